"""MDTA: multi-Dconv-head transposed attention (Restormer).

Attention is computed across *channels* (a ``(C/h)×(C/h)`` map per head), so its cost is linear
in the number of pixels. The map is a per-image decision (:mod:`aioir.nn.image_statistics`): the
tiles of a tiled restoration share the whole image's. Attribute names (``temperature``, ``qkv``, ``qkv_dwconv``,
``project_out``) follow the reference code for checkpoint compatibility.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aioir.nn.image_statistics import crop_count, image_statistic, pool_crops

__all__ = ["MDTA"]


class MDTA(nn.Module):
    """Transposed (channel) self-attention with a 1×1 + depthwise 3×3 QKV projection.

    Q and K are L2-normalised along the pixel axis; ``softmax(τ_head · Q Kᵀ) · V`` then a 1×1
    projection. ``τ`` is learnable per head, initialised to 1.
    """

    #: the attention map is a per-image decision (:mod:`aioir.nn.image_statistics`)
    image_statistics = True

    def __init__(self, dim: int, num_heads: int, bias: bool = False) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim ({dim}) must be divisible by num_heads ({num_heads})")
        self.num_heads = num_heads
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.qkv = nn.Conv2d(dim, dim * 3, kernel_size=1, bias=bias)
        self.qkv_dwconv = nn.Conv2d(
            dim * 3, dim * 3, kernel_size=3, padding=1, groups=dim * 3, bias=bias
        )
        self.project_out = nn.Conv2d(dim, dim, kernel_size=1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        qkv = self.qkv_dwconv(self.qkv(x))
        qkv = qkv.reshape(b, 3, self.num_heads, c // self.num_heads, h * w)
        q, k, v = qkv.unbind(1)
        attn = image_statistic(self, b, lambda: self.attention(q, k))
        out = (attn @ v).reshape(b, c, h, w)
        return self.project_out(out)

    def attention(self, q: Tensor, k: Tensor) -> Tensor:
        """``softmax(τ · Q̂ K̂ᵀ)`` per head (B×heads×c×c) from Q, K (B×heads×c×pixels); over all
        crops of an image while recording crops (:func:`~aioir.nn.image_statistics.pool_crops`)."""
        if crop_count() == 1:
            q = F.normalize(q, dim=-1)
            k = F.normalize(k, dim=-1)
            attn = (q @ k.transpose(-2, -1)) * self.temperature
            return attn.softmax(dim=-1)
        # Q̂ K̂ᵀ = Σ q kᵀ / (‖q‖ ‖k‖): means over pixels pool over crops, the ratio is the same
        n = q.shape[-1]
        gram = pool_crops(q @ k.transpose(-2, -1) / n)
        q_norm = pool_crops(q.pow(2).mean(dim=-1)).sqrt().clamp_min(1e-12)
        k_norm = pool_crops(k.pow(2).mean(dim=-1)).sqrt().clamp_min(1e-12)
        attn = gram / (q_norm[..., :, None] * k_norm[..., None, :]) * self.temperature
        return attn.softmax(dim=-1)
