"""CPL test helpers: a deterministic, name-keyed parameter fill shared by our network and the
one-off run of the authors' code that recorded ``tests/methods/cpl/data/``."""

from __future__ import annotations

import zlib

import torch
from torch import nn


def fill_parameters(net: nn.Module) -> None:
    """Give every parameter values that depend only on its key and shape (not on creation
    order): conv/linear weights N(0, 1/fan_in), norm weights and temperatures 1 ± 0.1, biases
    0 ± 0.1, prompt banks U(0, 1) (their initialisation)."""
    with torch.no_grad():
        for key, p in sorted(net.named_parameters()):
            g = torch.Generator().manual_seed(zlib.crc32(key.encode()))
            shape = tuple(p.shape)
            if key.endswith("prompt_param"):
                value = torch.rand(shape, generator=g)
            elif p.dim() >= 2:
                fan_in = max(1, p[0].numel())
                value = torch.randn(shape, generator=g) / fan_in**0.5
            elif key.endswith("bias"):
                value = 0.1 * torch.randn(shape, generator=g)
            else:
                value = 1.0 + 0.1 * torch.randn(shape, generator=g)
            p.copy_(value.view_as(p))
