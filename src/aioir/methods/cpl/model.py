"""CPL's network: PromptIR with sparse prompt modules (SPM) and mismatched-prompt negatives.

The inference network is the authors' ``SparsePromptIR(decoder=True)``: PromptIR's layout
without the six 1×1 convolutions PromptIR defines but never uses, and a top-``k`` router in each
of the three prompt modules (``k = 1`` of ``N = 5``; the kept weight is the raw softmax value,
not renormalised). The router is a plain, serialisable override (``router: {name: topk, k: 1}``,
:func:`aioir.nn.prompts.build_router`), so a config or a saved model's ``config.json`` chooses it;
the positive path gathers the ``k`` selected bank entries instead of summing all ``N``.

Training adds *negative* restorations (:meth:`CPL.forward_negatives`): in every prompt module the
top-``k`` set is excluded, ``k`` of the other entries are drawn uniformly at random, weighted by
their own router probabilities, and the whole negative forward runs without gradient. The CPR
loss (:mod:`aioir.methods.cpl.losses`) pushes the restoration away from them.
Notes: ``docs/methods/cpl.md``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, Unpack

import torch
from torch import Tensor

from aioir.errors import ConfigError
from aioir.methods.promptir.model import PROMPTIR_PRESETS, PromptIR
from aioir.models.registry import Preset, register_presets
from aioir.models.restormer import RestormerOptions
from aioir.nn.padding import pad_to_multiple, unpad
from aioir.nn.prompts import PromptRouter, RouterSpec

__all__ = ["CPL", "CPL_PRESETS", "DEFAULT_ROUTER", "NegativePrompts", "negative_prompt_weights"]

#: The authors' router: softmax, keep the largest weight (``num_expert = 1``).
DEFAULT_ROUTER: dict[str, Any] = {"name": "topk", "k": 1}


def negative_prompt_weights(
    probs: Tensor, k: int, generator: torch.Generator | None = None
) -> Tensor:
    """Mismatched prompt weights ``B×N`` from router probabilities ``probs`` (``B×N``).

    Per row: exclude the ``k`` most probable entries, draw ``k`` of the remaining ``N − k``
    uniformly without replacement, and give each its own probability (the rest 0).
    """
    n = probs.shape[-1]
    if n < 2 * k:
        raise ValueError(f"negative prompts need N >= 2k entries, got N={n}, k={k}")
    top = probs.topk(k, dim=-1).indices
    noise = torch.rand(probs.shape, generator=generator, dtype=torch.float32)
    noise = noise.to(probs.device).scatter(-1, top.to(probs.device), float("-inf"))
    picked = noise.topk(k, dim=-1).indices
    return torch.zeros_like(probs).scatter(-1, picked, probs.gather(-1, picked))


@dataclasses.dataclass(frozen=True)
class NegativePrompts:
    """The forward context of a negative restoration: every prompt module draws mismatched
    weights (:func:`negative_prompt_weights`) with ``k`` entries from its own router."""

    k: int
    generator: torch.Generator | None = None


class CPL(PromptIR):
    """PromptIR + CPL: sparse prompt modules and negative restorations (see the module doc).

    Args (keywords): those of :class:`~aioir.methods.promptir.PromptIR`, with CPL's defaults:
        router: :data:`DEFAULT_ROUTER` (top-1 of ``prompt_len``).
        parity_layers: ``False`` (the authors' inference network has no unused convolutions).
        negative_k: entries drawn per negative prompt (default: the router's ``k``, 1 for a
            dense router).
        size_multiple: inputs are reflect-padded (bottom/right) to a multiple of this; 16 as
            the authors' test wrapper (the network itself needs 8).
    """

    def __init__(
        self,
        *,
        router: RouterSpec | Callable[[], PromptRouter] | None = None,
        parity_layers: bool = False,
        negative_k: int | None = None,
        size_multiple: int = 16,
        prompt_dims: Sequence[int] = (64, 128, 320),
        prompt_sizes: Sequence[int] = (64, 32, 16),
        prompt_len: int = 5,
        fusion_heads: int | None = None,
        **backbone: Unpack[RestormerOptions],
    ) -> None:
        super().__init__(
            prompt_dims=prompt_dims,
            prompt_sizes=prompt_sizes,
            prompt_len=prompt_len,
            fusion_heads=fusion_heads,
            parity_layers=parity_layers,
            router=dict(DEFAULT_ROUTER) if router is None else router,
            **backbone,
        )
        k = negative_k if negative_k is not None else (self.prompt1.router.active or 1)
        if k < 1 or prompt_len < 2 * k:
            raise ConfigError(f"negative_k={k} needs 1 <= 2k <= prompt_len ({prompt_len})")
        self.negative_k = k
        if size_multiple < 8 or size_multiple % 8:
            raise ConfigError(f"size_multiple must be a multiple of 8, got {size_multiple}")
        self.size_multiple = size_multiple

    def fuse(self, stage: str, x: Tensor, ctx: Any) -> Tensor:
        """Prompt interaction at a decoder point; mismatched prompts in a negative forward."""
        if not isinstance(ctx, NegativePrompts):
            return super().fuse(stage, x, ctx)
        prompt_block, block, reduce = self._stage_modules(stage)
        probs = prompt_block.logits(x).softmax(dim=-1)
        weights = negative_prompt_weights(probs, ctx.k, ctx.generator)
        prompt = prompt_block.compose(weights, (x.shape[-2], x.shape[-1]), active=ctx.k)
        return reduce(block(torch.cat([x, prompt], dim=1)))

    @torch.no_grad()
    def forward_negatives(
        self, x: Tensor, num: int = 4, generator: torch.Generator | None = None
    ) -> Tensor:
        """``num`` negative restorations of ``x`` (``num×B×C×H×W``), without gradient.

        The ``num`` forwards run as one batch of ``num·B`` images; each image of each negative
        draws its own mismatched prompts in all three prompt modules.
        """
        if num < 1:
            raise ValueError(f"num must be >= 1, got {num}")
        b = x.shape[0]
        xp, size = pad_to_multiple(x, self.size_multiple)
        ctx = NegativePrompts(self.negative_k, generator)
        out = self.forward_padded(xp.repeat(num, 1, 1, 1), ctx)
        out = unpad(out, size)
        return out.view(num, b, *out.shape[1:])


# ------------------------------------------------------------------------------ presets
def _cpl_kwargs(promptir: Preset) -> dict[str, Any]:
    kwargs = {k: v for k, v in promptir.kwargs.items() if k != "parity_layers"}
    return kwargs


CPL_PRESETS: dict[str, Preset] = {
    "paper": Preset(
        {},
        parameters=35_376_967,
        description="PromptIR + CPL (TPAMI 2025): the authors' SparsePromptIR, top-1 of 5 prompts",
        # the same activations as PromptIR's paper preset (the unused convolutions never ran)
        inference_bytes_per_pixel=PROMPTIR_PRESETS["paper"].inference_bytes_per_pixel,
    ),
    "small": Preset(
        _cpl_kwargs(PROMPTIR_PRESETS["small"]),
        parameters=10_051_423,
        description="PromptIR + CPL, dim 32, fewer blocks, top-1 of 5 prompts",
    ),
    "tiny": Preset(
        _cpl_kwargs(PROMPTIR_PRESETS["tiny"]),
        parameters=1_395_670,
        description="PromptIR + CPL, dim 16, one block per level, top-1 of 5 prompts (tests)",
    ),
}

register_presets("cpl", CPL, CPL_PRESETS)
