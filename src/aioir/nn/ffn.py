"""GDFN: gated-Dconv feed-forward network (Restormer)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["GDFN"]


class GDFN(nn.Module):
    """1×1 ``C→2h'``, depthwise 3×3, ``GELU(x1) ⊙ x2``, 1×1 ``h'→C`` with ``h' = int(C·factor)``.

    Attribute names (``project_in``, ``dwconv``, ``project_out``) follow the reference code.
    """

    def __init__(self, dim: int, ffn_expansion_factor: float = 2.66, bias: bool = False) -> None:
        super().__init__()
        hidden = int(dim * ffn_expansion_factor)
        self.project_in = nn.Conv2d(dim, hidden * 2, kernel_size=1, bias=bias)
        self.dwconv = nn.Conv2d(
            hidden * 2, hidden * 2, kernel_size=3, padding=1, groups=hidden * 2, bias=bias
        )
        self.project_out = nn.Conv2d(hidden, dim, kernel_size=1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        x1, x2 = self.dwconv(self.project_in(x)).chunk(2, dim=1)
        return self.project_out(F.gelu(x1) * x2)
