"""Restormer U-Net building blocks: transformer block, patch embedding, down/up-sampling.

Attribute names follow the reference code (``norm1``, ``attn``, ``norm2``, ``ffn``, ``proj``,
``body``) so checkpoints of the Restormer family (Restormer, PromptIR, UDAIR, …) load unchanged.

Guidance hook: a :class:`TransformerBlock` may own a ``guidance`` module (e.g.
:class:`aioir.nn.guidance.FiLM`) that modulates the block input with a conditioning signal:
``x ← guidance(x, cond)`` before attention. :class:`BlockSequence` (an ``nn.Sequential``, hence
the same ``<level>.<i>.`` key layout) passes ``cond`` to every block, so a method can inject a
per-level signal into a stock backbone without copying it.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from aioir.nn.attention import MDTA
from aioir.nn.ffn import GDFN
from aioir.nn.norm import LayerNorm2d

__all__ = [
    "BlockSequence",
    "ConvMLP",
    "Downsample",
    "OverlapPatchEmbed",
    "TransformerBlock",
    "Upsample",
]


class TransformerBlock(nn.Module):
    """``x ← x + MDTA(LN(x)); x ← x + GDFN(LN(x))``, optionally preceded by a guidance module.

    Parameters: ``4C² + 31C + h + 3C·h' + 18h'`` (``h' = int(2.66·C)``) at the defaults, plus
    whatever ``guidance`` holds (its keys live under ``guidance.``).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        ffn_expansion_factor: float = 2.66,
        bias: bool = False,
        layernorm_type: str = "WithBias",
        guidance: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.norm1 = LayerNorm2d(dim, layernorm_type)
        self.attn = MDTA(dim, num_heads, bias)
        self.norm2 = LayerNorm2d(dim, layernorm_type)
        self.ffn = GDFN(dim, ffn_expansion_factor, bias)
        self.guidance = guidance

    def forward(self, x: Tensor, cond: Any = None) -> Tensor:
        if self.guidance is not None and cond is not None:
            x = self.guidance(x, cond)
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class BlockSequence(nn.Sequential):
    """``nn.Sequential`` whose forward threads an optional conditioning signal to every block."""

    def forward(self, x: Tensor, cond: Any = None) -> Tensor:
        if cond is None:
            for block in self:
                x = block(x)
            return x
        for block in self:
            x = block(x, cond)
        return x


def make_blocks(
    n: int,
    dim: int,
    num_heads: int,
    ffn_expansion_factor: float = 2.66,
    bias: bool = False,
    layernorm_type: str = "WithBias",
) -> BlockSequence:
    """``n`` stacked :class:`TransformerBlock` of width ``dim``."""
    return BlockSequence(
        *[
            TransformerBlock(dim, num_heads, ffn_expansion_factor, bias, layernorm_type)
            for _ in range(n)
        ]
    )


class OverlapPatchEmbed(nn.Module):
    """3×3 convolution from the image to ``embed_dim`` channels (``proj``)."""

    def __init__(self, in_channels: int = 3, embed_dim: int = 48, bias: bool = False) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, embed_dim, kernel_size=3, padding=1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x)


class Downsample(nn.Module):
    """3×3 ``C→C/2`` then PixelUnshuffle(2): ``2C`` channels at half resolution."""

    def __init__(self, n_feat: int, bias: bool = False) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(n_feat, n_feat // 2, kernel_size=3, padding=1, bias=bias),
            nn.PixelUnshuffle(2),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class Upsample(nn.Module):
    """3×3 ``C→2C`` then PixelShuffle(2): ``C/2`` channels at double resolution."""

    def __init__(self, n_feat: int, bias: bool = False) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(n_feat, n_feat * 2, kernel_size=3, padding=1, bias=bias),
            nn.PixelShuffle(2),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class ConvMLP(nn.Module):
    """Pointwise MLP on maps: 1×1 ``in→hidden``, GELU, dropout, 1×1 ``hidden→out``, dropout."""

    def __init__(
        self, in_features: int, hidden_features: int, out_features: int, drop: float = 0.0
    ) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(in_features, hidden_features, 1)
        self.act = nn.GELU()
        self.fc2 = nn.Conv2d(hidden_features, out_features, 1)
        self.drop = nn.Dropout(drop)

    def forward(self, x: Tensor) -> Tensor:
        x = self.drop(self.act(self.fc1(x)))
        return self.drop(self.fc2(x))
