"""Gates: Gated Channel Transformation (GCT, Yang et al. 2020), and the two activation-free
gates of NAFNet-style blocks (Chen et al., ECCV 2022): :class:`SimpleGate` (one half of the
channels times the other) and :class:`SimplifiedChannelAttention` (a linear channel gate from
the global mean); and a CBAM-style :class:`SpatialGate` (Woo et al., ECCV 2018)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from aioir.nn.image_statistics import image_statistic, pool_crops

__all__ = ["GCT", "SimpleGate", "SimplifiedChannelAttention", "SpatialGate"]


class GCT(nn.Module):
    """Channel gate ``x ⊙ (1 + tanh(s·n + β))`` from global channel statistics.

    ``"l2"`` mode: ``s_c = α_c·sqrt(Σ_hw x_c² + ε)``, ``n_c = γ_c / sqrt(mean_c(s_c²) + ε)``.
    ``"l1"`` mode: ``s_c = α_c·Σ_hw |x_c|``, ``n_c = γ_c / (mean_c|s_c| + ε)``.
    Initialised to ``α = 1, γ = 0, β = 0`` so the gate starts as the identity. Note the spatial
    *sum*: the statistics depend on the input size. The gate is a per-image decision
    (:mod:`aioir.nn.image_statistics`): the tiles of a tiled restoration share the whole image's.
    """

    image_statistics = True

    def __init__(
        self, num_channels: int, epsilon: float = 1e-5, mode: str = "l2", after_relu: bool = False
    ) -> None:
        super().__init__()
        if mode not in ("l1", "l2"):
            raise ValueError(f"GCT mode must be 'l1' or 'l2', got {mode!r}")
        self.alpha = nn.Parameter(torch.ones(1, num_channels, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, num_channels, 1, 1))
        self.beta = nn.Parameter(torch.zeros(1, num_channels, 1, 1))
        self.epsilon = epsilon
        self.mode = mode
        self.after_relu = after_relu

    def forward(self, x: Tensor) -> Tensor:
        return x * image_statistic(self, x.shape[0], lambda: self.gate(x))

    def gate(self, x: Tensor) -> Tensor:
        """The per-channel factor ``1 + tanh(s·n + β)`` (B×C×1×1)."""
        if self.mode == "l2":
            energy = pool_crops(x.pow(2).sum((2, 3), keepdim=True), "sum")
            embedding = (energy + self.epsilon).sqrt() * self.alpha
            norm = self.gamma * torch.rsqrt(embedding.pow(2).mean(1, keepdim=True) + self.epsilon)
        else:
            ax = x if self.after_relu else x.abs()
            embedding = pool_crops(ax.sum((2, 3), keepdim=True), "sum") * self.alpha
            norm = self.gamma / (embedding.abs().mean(1, keepdim=True) + self.epsilon)
        return 1.0 + torch.tanh(embedding * norm + self.beta)


class SimpleGate(nn.Module):
    """``x₁ ⊙ x₂`` for the two channel halves of ``x`` (``2C → C``): a gate in place of a
    nonlinear activation."""

    def forward(self, x: Tensor) -> Tensor:
        a, b = x.chunk(2, dim=1)
        return a * b


class SimplifiedChannelAttention(nn.Module):
    """``x ⊙ W·mean_hw(x)``: channel attention with a 1×1 convolution ``W`` of the global mean
    and no nonlinearity (keys ``conv.weight``/``conv.bias``). A per-image decision
    (:mod:`aioir.nn.image_statistics`): the tiles of a tiled restoration share the image's."""

    image_statistics = True

    def __init__(self, num_channels: int, bias: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(num_channels, num_channels, kernel_size=1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return x * image_statistic(
            self, x.shape[0], lambda: self.conv(pool_crops(x.mean(dim=(2, 3), keepdim=True)))
        )


class SpatialGate(nn.Module):
    """CBAM-style spatial attention: ``x ⊙ 2σ(conv_k×k([mean_c(x), max_c(x)]))``.

    A per-pixel gate from the channel mean and maximum (``2→1`` channels, ``k×k``, biased;
    ``2k² + 1`` parameters). The convolution starts at zero and the gate is scaled by 2, so it
    starts as the identity (range 0–2: it may damp or boost a region); CBAM's own gate is
    ``σ(…)``. Local, so the tiles of a tiled restoration need no shared decision.
    """

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and positive, got {kernel_size}")
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2)
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)

    def forward(self, x: Tensor) -> Tensor:
        pooled = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], dim=1)
        return x * (2.0 * torch.sigmoid(self.conv(pooled)))
