"""Channel LayerNorm for ``B×C×H×W`` feature maps (Restormer numerics).

Normalises over the channel axis at every pixel with the *biased* variance and ``eps = 1e-5``,
exactly as Restormer's ``WithBias_LayerNorm`` / ``BiasFree_LayerNorm`` do on ``B×(HW)×C``
tokens, but without the two rearranges: the "with bias" variant permutes to channels-last and
calls the fused :func:`torch.nn.functional.layer_norm` (a plain op that exports to ONNX); the
"bias free" variant divides by the standard deviation *without* subtracting the mean.

State-dict layout (``<name>.body.weight`` / ``<name>.body.bias``) follows the reference code, so
Restormer-family checkpoints load unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["BiasFreeLayerNorm", "LayerNorm2d", "WithBiasLayerNorm"]

EPS = 1e-5


class WithBiasLayerNorm(nn.Module):
    """``(x - mean_c) / sqrt(var_c + eps) * weight + bias`` over the channel axis of B×C×H×W."""

    def __init__(self, num_channels: int, eps: float = EPS) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        y = F.layer_norm(x.permute(0, 2, 3, 1), self.weight.shape, self.weight, self.bias, self.eps)
        return y.permute(0, 3, 1, 2)


class BiasFreeLayerNorm(nn.Module):
    """``x / sqrt(var_c + eps) * weight`` (no mean subtraction in the numerator, no bias)."""

    def __init__(self, num_channels: int, eps: float = EPS) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        var = x.var(dim=1, keepdim=True, unbiased=False)
        return x * torch.rsqrt(var + self.eps) * self.weight.view(1, -1, 1, 1)


class LayerNorm2d(nn.Module):
    """Channel LayerNorm of type ``"WithBias"`` (default) or ``"BiasFree"``; parameters in ``body``.

    ``eps`` defaults to Restormer's ``1e-5`` (NAFNet's blocks use ``1e-6``).
    """

    def __init__(
        self, num_channels: int, layernorm_type: str = "WithBias", eps: float = EPS
    ) -> None:
        super().__init__()
        if layernorm_type == "BiasFree":
            self.body: nn.Module = BiasFreeLayerNorm(num_channels, eps)
        elif layernorm_type == "WithBias":
            self.body = WithBiasLayerNorm(num_channels, eps)
        else:
            raise ValueError(
                f"layernorm_type must be 'WithBias' or 'BiasFree', got {layernorm_type!r}"
            )

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)
