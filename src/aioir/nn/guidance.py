"""Guidance layers: feature-wise linear modulation of a feature map by a global signal."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["FiLM"]


class FiLM(nn.Module):
    """``y = x ⊙ (1 + γ) + β`` with ``[γ, β] = Linear(GELU(Linear(cond)))`` broadcast over H×W.

    Args:
        cond_dim: size ``D`` of the conditioning vector (``B×D``).
        num_channels: channels ``C`` of the modulated map (``B×C×H×W``).
        hidden_dim: hidden width (default ``2C``).
        zero_init: zero the last linear layer so the layer starts as the identity.

    It also accepts ``(x, cond)`` as :class:`aioir.nn.blocks.TransformerBlock`'s ``guidance``.
    """

    def __init__(
        self,
        cond_dim: int,
        num_channels: int,
        hidden_dim: int | None = None,
        zero_init: bool = True,
    ) -> None:
        super().__init__()
        hidden = hidden_dim or 2 * num_channels
        self.fc1 = nn.Linear(cond_dim, hidden)
        self.fc2 = nn.Linear(hidden, 2 * num_channels)
        if zero_init:
            nn.init.zeros_(self.fc2.weight)
            nn.init.zeros_(self.fc2.bias)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        gamma, beta = self.fc2(F.gelu(self.fc1(cond))).chunk(2, dim=-1)
        return x * (1 + gamma[..., None, None]) + beta[..., None, None]
