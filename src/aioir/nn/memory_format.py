"""Memory layout helpers.

``module.to(memory_format=torch.channels_last)`` fails on models holding parameters of rank
other than 4 (PromptIR's 5-D prompt banks); :func:`to_channels_last` converts only the 4-D
parameters and buffers (convolution weights), which is what the layout change is for.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["to_channels_last"]


def to_channels_last(module: nn.Module) -> nn.Module:
    """Convert every 4-D parameter and buffer of ``module`` to channels-last, in place."""
    with torch.no_grad():
        for tensor in [*module.parameters(), *module.buffers()]:
            if tensor.dim() == 4:
                tensor.data = tensor.data.contiguous(memory_format=torch.channels_last)
    return module
