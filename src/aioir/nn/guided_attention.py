"""Guidance-conditioned transformer blocks: channel cross-attention from a guidance map.

:class:`GuidedChannelAttention` is MDTA's transposed (channel) attention with the query taken
from a *guidance map* ``Y`` (the features modulated by a global signal, e.g. by
:class:`aioir.nn.guidance.FiLM`) and the keys/values from the features ``X``:
``Q = DW3×3(1×1(Y))``, ``[K, V] = split(DW3×3(1×1_{C→2C}(X)))``, ``softmax(τ·Q̂K̂ᵀ)·V``, 1×1.

:class:`GuidedTransformerBlock` (``x, y → x'``):

1. ``a = GuidedChannelAttention(LN(x), LN(y))``;
2. ``x ← y + MDTA(LN(a))`` — the residual base is the guidance map, not ``x``;
3. ``x ← x + GDFN(LN(x))``.

:class:`GuidedBlockSequence` runs ``depth`` of them with the same guidance map (keys
``blocks.<i>.``). Attribute names (``norm1``, ``guidance_norm``, ``attention`` with ``q``, ``kv``,
``project``; ``mdta_norm``, ``mdta``, ``norm2``, ``ffn``) are those of a released implementation;
the attention map is a per-image decision like MDTA's (:mod:`aioir.nn.image_statistics`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from aioir.nn.attention import MDTA
from aioir.nn.ffn import GDFN
from aioir.nn.image_statistics import image_statistic
from aioir.nn.norm import LayerNorm2d

__all__ = ["GuidedBlockSequence", "GuidedChannelAttention", "GuidedTransformerBlock"]


class GuidedChannelAttention(nn.Module):
    """Channel cross-attention: queries from the guidance map, keys and values from ``x``."""

    image_statistics = True
    #: the same ``softmax(τ·Q̂K̂ᵀ)`` as MDTA (pooled over crops while recording)
    attention = MDTA.attention

    def __init__(self, dim: int, num_heads: int, bias: bool = True) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim ({dim}) must be divisible by num_heads ({num_heads})")
        self.num_heads = num_heads
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.q = nn.Sequential(
            nn.Conv2d(dim, dim, 1, bias=bias),
            nn.Conv2d(dim, dim, 3, padding=1, groups=dim, bias=bias),
        )
        self.kv = nn.Sequential(
            nn.Conv2d(dim, dim * 2, 1, bias=bias),
            nn.Conv2d(dim * 2, dim * 2, 3, padding=1, groups=dim * 2, bias=bias),
        )
        self.project = nn.Conv2d(dim, dim, 1, bias=bias)

    def forward(self, x: Tensor, guidance: Tensor) -> Tensor:
        b, c, h, w = x.shape
        heads = self.num_heads
        q = self.q(guidance).reshape(b, heads, c // heads, h * w)
        k, v = self.kv(x).reshape(b, 2, heads, c // heads, h * w).unbind(1)
        attn = image_statistic(self, b, lambda: self.attention(q, k))
        return self.project((attn @ v).reshape(b, c, h, w))


class GuidedTransformerBlock(nn.Module):
    """Cross-attention from the guidance map, MDTA with the guidance map as the residual base,
    then GDFN (see the module docstring)."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        ffn_expansion_factor: float = 2.66,
        bias: bool = True,
        layernorm_type: str = "WithBias",
    ) -> None:
        super().__init__()
        self.norm1 = LayerNorm2d(dim, layernorm_type)
        self.guidance_norm = LayerNorm2d(dim, layernorm_type)
        self.attention = GuidedChannelAttention(dim, num_heads, bias)
        self.mdta_norm = LayerNorm2d(dim, layernorm_type)
        self.mdta = MDTA(dim, num_heads, bias)
        self.norm2 = LayerNorm2d(dim, layernorm_type)
        self.ffn = GDFN(dim, ffn_expansion_factor, bias)

    def forward(self, x: Tensor, guidance: Tensor) -> Tensor:
        cross = self.attention(self.norm1(x), self.guidance_norm(guidance))
        x = guidance + self.mdta(self.mdta_norm(cross))
        return x + self.ffn(self.norm2(x))


class GuidedBlockSequence(nn.Module):
    """``depth`` :class:`GuidedTransformerBlock` sharing one guidance map (``blocks.<i>.``)."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        depth: int,
        ffn_expansion_factor: float = 2.66,
        bias: bool = True,
        layernorm_type: str = "WithBias",
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            GuidedTransformerBlock(dim, num_heads, ffn_expansion_factor, bias, layernorm_type)
            for _ in range(depth)
        )

    def forward(self, x: Tensor, guidance: Tensor) -> Tensor:
        for block in self.blocks:
            x = block(x, guidance)
        return x
