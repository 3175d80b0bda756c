"""PromptIR (Potlapalli et al., NeurIPS 2023): Restormer + prompt blocks in the decoder.

At each of the three decoder fusion points a prompt generation block (``prompt3/2/1``, see
:class:`aioir.nn.prompts.PromptGenBlock`) produces a prompt from the feature, which is
concatenated to it, passed through one transformer block (``noise_level3/2/1``, 4 heads) and
reduced by a 1×1 convolution (``reduce_noise_level3/2/1``). Reference quirk kept: the latent
fusion reduces ``8·dim + C_p`` to ``4·dim`` channels, so the first upsample is ``Upsample(4·dim)``.

Parity flag ``parity_layers=True`` (paper preset) also builds the six 1×1 convolutions the
reference code defines but never uses (215,296 parameters, counted in the published 35.59M);
they are never computed. No input mean subtraction; output = ``3×3(F) + input``.

``router`` selects the prompt weighting (dense softmax; ``{"name": "topk", "k": 1}`` for
CPL-style sparse prompts; :func:`aioir.nn.prompts.build_router`) without changing parameters or
keys; a named router is a plain override, so a config or a saved model's ``config.json`` can
carry it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Unpack

import torch
from torch import Tensor, nn

from aioir.models.registry import Preset, register_presets
from aioir.models.restormer import Restormer, RestormerOptions
from aioir.nn.blocks import TransformerBlock
from aioir.nn.padding import pad_to_multiple, unpad
from aioir.nn.prompts import PromptGenBlock, PromptRouter, RouterSpec, router_factory

__all__ = ["PromptIR"]


class PromptIR(Restormer):
    """PromptIR all-in-one restoration network.

    Args (keywords; besides :class:`~aioir.models.restormer.Restormer`'s backbone sizes,
    :class:`~aioir.models.restormer.RestormerOptions`):
        prompt_dims: prompt channels at (decoder_level2, decoder_level3, latent) → ``prompt1..3``.
        prompt_sizes: prompt bank spatial sizes, same order.
        prompt_len: prompt components ``N`` per bank.
        fusion_heads: heads of the prompt-interaction blocks.
        parity_layers: build the reference code's six unused 1×1 convolutions.
        router: a router name or ``{"name": ..., options}`` (:func:`aioir.nn.prompts.build_router`)
            or a callable returning a fresh :class:`PromptRouter` per block (default softmax).
    """

    latent_width = 4  # the reference's latent fusion reduces to 4·dim

    def __init__(
        self,
        *,
        prompt_dims: Sequence[int] = (64, 128, 320),
        prompt_sizes: Sequence[int] = (64, 32, 16),
        prompt_len: int = 5,
        fusion_heads: int | None = None,
        parity_layers: bool = True,
        router: RouterSpec | Callable[[], PromptRouter] | None = None,
        **backbone: Unpack[RestormerOptions],
    ) -> None:
        super().__init__(**backbone)
        dim, bias, tb = self.dim, self.backbone_options["bias"], self.block_options
        c2, c3, c4 = dim * 2, dim * 4, dim * 8
        p1, p2, p3 = prompt_dims
        s1, s2, s3 = prompt_sizes
        fh = self.backbone_options["heads"][2] if fusion_heads is None else fusion_heads

        new_router = router_factory(router)

        def make_router() -> PromptRouter | None:
            return new_router() if new_router is not None else None

        self.prompt1 = PromptGenBlock(p1, prompt_len, s1, c2, make_router())
        self.prompt2 = PromptGenBlock(p2, prompt_len, s2, c3, make_router())
        self.prompt3 = PromptGenBlock(p3, prompt_len, s3, c4, make_router())
        self.noise_level3 = TransformerBlock(c4 + p3, fh, **tb)
        self.reduce_noise_level3 = nn.Conv2d(c4 + p3, c3, kernel_size=1, bias=bias)
        self.noise_level2 = TransformerBlock(c3 + p2, fh, **tb)
        self.reduce_noise_level2 = nn.Conv2d(c3 + p2, c3, kernel_size=1, bias=bias)
        self.noise_level1 = TransformerBlock(c2 + p1, fh, **tb)
        self.reduce_noise_level1 = nn.Conv2d(c2 + p1, c2, kernel_size=1, bias=bias)
        self.parity_layers = parity_layers
        if parity_layers:  # defined but never used by the reference model
            self.chnl_reduce1 = nn.Conv2d(64, 64, kernel_size=1, bias=bias)
            self.chnl_reduce2 = nn.Conv2d(128, 128, kernel_size=1, bias=bias)
            self.chnl_reduce3 = nn.Conv2d(320, 256, kernel_size=1, bias=bias)
            self.reduce_noise_channel_1 = nn.Conv2d(dim + 64, dim, kernel_size=1, bias=bias)
            self.reduce_noise_channel_2 = nn.Conv2d(c2 + 128, c2, kernel_size=1, bias=bias)
            self.reduce_noise_channel_3 = nn.Conv2d(c3 + 256, c3, kernel_size=1, bias=bias)

    def _stage_modules(self, stage: str) -> tuple[PromptGenBlock, nn.Module, nn.Module]:
        if stage == "latent":
            return self.prompt3, self.noise_level3, self.reduce_noise_level3
        if stage == "decoder_level3":
            return self.prompt2, self.noise_level2, self.reduce_noise_level2
        return self.prompt1, self.noise_level1, self.reduce_noise_level1

    def fuse(self, stage: str, x: Tensor, ctx: Any) -> Tensor:
        """Prompt generation + interaction at a decoder point."""
        prompt_block, block, reduce = self._stage_modules(stage)
        prompt = prompt_block(x) if ctx is None else prompt_block(x, ctx.get(stage))
        return reduce(block(torch.cat([x, prompt], dim=1)))

    def forward_with_prompt_weights(self, x: Tensor, weights: dict[str, Tensor]) -> Tensor:
        """Restore with explicit prompt weights per stage (``B×N``; e.g. CPL negatives).

        Stages missing from ``weights`` use the router.
        """
        xp, size = pad_to_multiple(x, self.size_multiple)
        return unpad(self.forward_padded(xp, dict(weights)), size)


# ------------------------------------------------------------------------------ presets
PROMPTIR_PRESETS: dict[str, Preset] = {
    "paper": Preset(
        {},
        parameters=35_592_263,
        description="PromptIR (NeurIPS 2023), dim 48, with the 6 unused reference 1x1 convs",
        inference_bytes_per_pixel=5160,
    ),
    "small": Preset(
        {
            "dim": 32,
            "num_blocks": (2, 3, 3, 4),
            "num_refinement_blocks": 2,
            "prompt_dims": (32, 64, 160),
            "parity_layers": False,
        },
        parameters=10_051_423,
        description="PromptIR, dim 32, fewer blocks",
    ),
    "tiny": Preset(
        {
            "dim": 16,
            "num_blocks": (1, 1, 1, 1),
            "num_refinement_blocks": 1,
            "prompt_dims": (16, 32, 64),
            "prompt_sizes": (32, 16, 8),
            "parity_layers": False,
        },
        parameters=1_395_670,
        description="PromptIR, dim 16, one block per level (tests)",
    ),
}

register_presets("promptir", PromptIR, PROMPTIR_PRESETS)
