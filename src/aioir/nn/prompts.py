"""Prompt blocks (PromptIR) with a pluggable weighting strategy (dense softmax or sparse top-k).

:class:`PromptGenBlock` (PGM): a learnable bank ``E ∈ R^{N×C_p×S×S}`` (initialised U(0,1)), a
router ``Linear_{C→N}(GAP(F))`` and a bias-free 3×3 convolution::

    w = router(softmax(logits)),  P = conv3x3(bilinear_resize(Σ_i w_i E_i, H×W))

The *router* is a parameter-free strategy object mapping logits to weights, so a sparse variant
(CPL's top-k, :class:`TopKRouter`) keeps PromptIR's parameters and key layout
(``prompt_param``, ``linear_layer``, ``conv3x3``). Subclasses may also override
:meth:`PromptGenBlock.route` or pass explicit ``weights`` to :meth:`PromptGenBlock.forward`
(e.g. CPL's negative prompts). The routed weights are a per-image decision
(:mod:`aioir.nn.image_statistics`): the tiles of a tiled restoration share the whole image's (the
prompt is still resized to each tile's size).

:class:`PromptInteraction` (PIM): ``1×1(TB([F ‖ P]))`` — the fusion used after the prompt block.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aioir.nn.blocks import TransformerBlock
from aioir.nn.image_statistics import image_statistic, pool_crops

__all__ = ["PromptGenBlock", "PromptInteraction", "PromptRouter", "SoftmaxRouter", "TopKRouter"]


class PromptRouter(nn.Module):
    """Strategy: router logits ``B×N`` → non-negative prompt weights ``B×N``."""

    def forward(self, logits: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class SoftmaxRouter(PromptRouter):
    """PromptIR: dense softmax weights over all ``N`` prompt components."""

    def forward(self, logits: Tensor) -> Tensor:
        return logits.softmax(dim=-1)


class TopKRouter(PromptRouter):
    """CPL sparse prompts: softmax, then keep the ``k`` largest weights (not renormalised)."""

    def __init__(self, k: int = 1) -> None:
        super().__init__()
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        self.k = k

    def forward(self, logits: Tensor) -> Tensor:
        probs = logits.softmax(dim=-1)
        top, idx = probs.topk(self.k, dim=-1)
        return torch.zeros_like(probs).scatter(-1, idx, top)


class PromptGenBlock(nn.Module):
    """Prompt generation block (PGM) producing a ``C_p×H×W`` prompt for a ``C×H×W`` feature.

    Args:
        prompt_dim: prompt channels ``C_p``.
        prompt_len: bank size ``N``.
        prompt_size: bank spatial size ``S``.
        lin_dim: channels ``C`` of the routed feature.
        router: weighting strategy (default :class:`SoftmaxRouter`).
    """

    #: the routed weights are a per-image decision (:mod:`aioir.nn.image_statistics`)
    image_statistics = True

    def __init__(
        self,
        prompt_dim: int = 128,
        prompt_len: int = 5,
        prompt_size: int = 96,
        lin_dim: int = 192,
        router: PromptRouter | None = None,
    ) -> None:
        super().__init__()
        # leading singleton axis kept for checkpoint compatibility with the reference code
        self.prompt_param = nn.Parameter(
            torch.rand(1, prompt_len, prompt_dim, prompt_size, prompt_size)
        )
        self.linear_layer = nn.Linear(lin_dim, prompt_len)
        self.conv3x3 = nn.Conv2d(prompt_dim, prompt_dim, kernel_size=3, padding=1, bias=False)
        self.router = router if router is not None else SoftmaxRouter()

    def logits(self, x: Tensor) -> Tensor:
        """Router logits ``B×N`` from the globally pooled feature."""
        return self.linear_layer(pool_crops(x.mean(dim=(-2, -1))))

    def route(self, x: Tensor) -> Tensor:
        """Prompt weights ``B×N`` for feature ``x``."""
        return self.router(self.logits(x))

    def compose(self, weights: Tensor, size: tuple[int, int]) -> Tensor:
        """``conv3x3(resize(Σ_i w_i E_i, size))`` for weights ``B×N``."""
        bank = self.prompt_param[0]  # N×C_p×S×S
        n, c, s1, s2 = bank.shape
        mixed = (weights.to(bank.dtype) @ bank.reshape(n, -1)).view(-1, c, s1, s2)
        mixed = F.interpolate(mixed, size, mode="bilinear", align_corners=False)
        return self.conv3x3(mixed)

    def forward(self, x: Tensor, weights: Tensor | None = None) -> Tensor:
        if weights is None:
            weights = image_statistic(self, x.shape[0], lambda: self.route(x))
        return self.compose(weights, (x.shape[-2], x.shape[-1]))


class PromptInteraction(nn.Module):
    """Prompt interaction (PIM): ``reduce(block([x ‖ prompt]))``, TB on ``C + C_p`` channels."""

    def __init__(
        self,
        dim: int,
        prompt_dim: int,
        out_dim: int,
        num_heads: int = 4,
        ffn_expansion_factor: float = 2.66,
        bias: bool = False,
        layernorm_type: str = "WithBias",
    ) -> None:
        super().__init__()
        self.block = TransformerBlock(
            dim + prompt_dim, num_heads, ffn_expansion_factor, bias, layernorm_type
        )
        self.reduce = nn.Conv2d(dim + prompt_dim, out_dim, kernel_size=1, bias=bias)

    def forward(self, x: Tensor, prompt: Tensor) -> Tensor:
        return self.reduce(self.block(torch.cat([x, prompt], dim=1)))
