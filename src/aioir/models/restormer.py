"""Restormer (Zamir et al., CVPR 2022): the 4-level transformer U-Net the other models extend.

:class:`Restormer` is both a model and the backbone of PromptIR, UDAIR, CPL, … Subclasses (or
callers) plug into three decoder *fusion points* without copying the U-Net:

* ``"latent"`` (after the latent blocks), ``"decoder_level3"`` and ``"decoder_level2"`` (after
  those decoder levels): :meth:`Restormer.fuse` is called with the stage name, the feature and a
  per-image context. By default it applies ``self.fusions[stage](x, ctx)`` when a module was
  given in ``fusions=`` and is the identity otherwise. Subclasses that must keep the reference
  key layout (PromptIR, UDAIR) override :meth:`fuse` and own flat attributes.
* :meth:`Restormer.context` computes the per-image context from the padded input (default
  ``None``); :meth:`Restormer.block_condition` picks what each block sequence receives as
  ``cond`` (see :class:`aioir.nn.blocks.TransformerBlock`'s ``guidance``).
* ``latent_out_channels`` is the width leaving the latent fusion (PromptIR's quirk: ``4·dim``).
* :meth:`Restormer.forward_padded_with_maps` returns the output with the refinement features
  and a per-image context map (:meth:`Restormer.context_map`; UDAIR: its degradation map), for
  wrappers that act on the output (:class:`aioir.models.filter_bank.FilterBankRestorer`).

Subclasses take the backbone's nine size arguments as ``**backbone``
(:class:`RestormerOptions`) and read them back from :attr:`Restormer.backbone_options`.

Input sizes: any ``H×W``; the input is reflect-padded at the bottom/right to a multiple of
:attr:`size_multiple` (8) and the output cropped back. Output = ``3×3(F) + input``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, TypedDict

import torch
from torch import Tensor, nn

from aioir.models.registry import Preset, register_presets
from aioir.nn.blocks import Downsample, OverlapPatchEmbed, Upsample, make_blocks
from aioir.nn.padding import pad_to_multiple, unpad

__all__ = ["FUSION_STAGES", "OutputWithMaps", "Restormer", "RestormerOptions"]

#: Decoder points where a fusion module may act, in forward order.
FUSION_STAGES: tuple[str, ...] = ("latent", "decoder_level3", "decoder_level2")


class RestormerOptions(TypedDict, total=False):
    """The backbone's size arguments (:class:`Restormer`'s first nine), which subclasses take
    as ``**backbone`` and pass through."""

    inp_channels: int
    out_channels: int
    dim: int
    num_blocks: Sequence[int]
    num_refinement_blocks: int
    heads: Sequence[int]
    ffn_expansion_factor: float
    bias: bool
    layernorm_type: str


class OutputWithMaps(NamedTuple):
    """:meth:`Restormer.forward_padded_with_maps`: the restored (padded) image, the refinement
    features (``feature_channels``, full resolution) and the per-image context map
    (``context_map_channels``)."""

    image: Tensor
    features: Tensor
    context: Tensor


class Restormer(nn.Module):
    """Restormer U-Net with decoder fusion hooks.

    Args:
        inp_channels, out_channels: image channels.
        dim: width of level 1 (levels are ``dim, 2dim, 4dim, 8dim``).
        num_blocks: transformer blocks per level (encoder L1–L3 and latent; mirrored decoder).
        num_refinement_blocks: blocks after decoder level 1.
        heads: attention heads per level.
        ffn_expansion_factor: GDFN expansion (2.66).
        bias: biases in the U-Net convolutions.
        layernorm_type: ``"WithBias"`` or ``"BiasFree"``.
        latent_out_channels: channels leaving the latent fusion point (default
            ``latent_width·dim``: ``8·dim``; PromptIR ``4·dim``).
        fusions: optional modules keyed by :data:`FUSION_STAGES`, called as ``m(x, ctx)``; they
            must keep the channel count (``latent_out_channels`` at ``"latent"``).

    :attr:`backbone_options` keeps the first nine (:class:`RestormerOptions`) and
    :attr:`block_options` the three that every transformer block takes.
    """

    size_multiple: int = 8
    #: default width leaving the latent fusion point, in units of ``dim``
    latent_width: int = 8

    def __init__(
        self,
        inp_channels: int = 3,
        out_channels: int = 3,
        dim: int = 48,
        num_blocks: Sequence[int] = (4, 6, 6, 8),
        num_refinement_blocks: int = 4,
        heads: Sequence[int] = (1, 2, 4, 8),
        ffn_expansion_factor: float = 2.66,
        bias: bool = False,
        layernorm_type: str = "WithBias",
        latent_out_channels: int | None = None,
        fusions: Mapping[str, nn.Module] | None = None,
    ) -> None:
        super().__init__()
        if len(num_blocks) != 4 or len(heads) != 4:
            raise ValueError("num_blocks and heads need one entry per level (4)")
        c1, c2, c3, c4 = dim, dim * 2, dim * 4, dim * 8
        lat = dim * self.latent_width if latent_out_channels is None else latent_out_channels
        self.backbone_options: RestormerOptions = {
            "inp_channels": inp_channels, "out_channels": out_channels, "dim": dim,
            "num_blocks": tuple(num_blocks), "num_refinement_blocks": num_refinement_blocks,
            "heads": tuple(heads), "ffn_expansion_factor": ffn_expansion_factor, "bias": bias,
            "layernorm_type": layernorm_type,
        }  # fmt: skip
        blocks = self.block_options
        self.dim = dim
        self.patch_embed = OverlapPatchEmbed(inp_channels, dim)
        self.encoder_level1 = make_blocks(num_blocks[0], c1, heads[0], **blocks)
        self.down1_2 = Downsample(c1)
        self.encoder_level2 = make_blocks(num_blocks[1], c2, heads[1], **blocks)
        self.down2_3 = Downsample(c2)
        self.encoder_level3 = make_blocks(num_blocks[2], c3, heads[2], **blocks)
        self.down3_4 = Downsample(c3)
        self.latent = make_blocks(num_blocks[3], c4, heads[3], **blocks)
        self.up4_3 = Upsample(lat)
        self.reduce_chan_level3 = nn.Conv2d(lat // 2 + c3, c3, kernel_size=1, bias=bias)
        self.decoder_level3 = make_blocks(num_blocks[2], c3, heads[2], **blocks)
        self.up3_2 = Upsample(c3)
        self.reduce_chan_level2 = nn.Conv2d(c3, c2, kernel_size=1, bias=bias)
        self.decoder_level2 = make_blocks(num_blocks[1], c2, heads[1], **blocks)
        self.up2_1 = Upsample(c2)
        self.decoder_level1 = make_blocks(num_blocks[0], c2, heads[0], **blocks)
        self.refinement = make_blocks(num_refinement_blocks, c2, heads[0], **blocks)
        self.output = nn.Conv2d(c2, out_channels, kernel_size=3, padding=1, bias=bias)
        unknown = set(fusions or {}) - set(FUSION_STAGES)
        if unknown:
            raise ValueError(f"unknown fusion stages {sorted(unknown)}; use {FUSION_STAGES}")
        self.fusions = nn.ModuleDict(dict(fusions or {}))

    @property
    def block_options(self) -> dict[str, Any]:
        """The keyword arguments every transformer block of the network takes."""
        o = self.backbone_options
        return {
            "ffn_expansion_factor": o["ffn_expansion_factor"],
            "bias": o["bias"],
            "layernorm_type": o["layernorm_type"],
        }

    @property
    def feature_channels(self) -> int:
        """Channels of the refinement features (``2·dim``)."""
        return 2 * self.dim

    @property
    def context_map_channels(self) -> int:
        """Channels of :meth:`context_map`'s map (default: the refinement features')."""
        return self.feature_channels

    # ------------------------------------------------------------------ hooks for subclasses
    def context(self, x: Tensor) -> Any:
        """Per-image context from the padded raw input (default: ``None``)."""
        return None

    def block_condition(self, level: str, ctx: Any) -> Any:
        """``cond`` passed to the blocks of ``level`` (an attribute name; default ``None``)."""
        return None

    def fuse(self, stage: str, x: Tensor, ctx: Any) -> Tensor:
        """Fusion at a decoder point (see :data:`FUSION_STAGES`); default: ``fusions[stage]``."""
        if stage in self.fusions:
            return self.fusions[stage](x, ctx)
        return x

    def context_map(self, ctx: Any, features: Tensor) -> Tensor:
        """A per-image map of what the network knows about the input, for wrappers that act
        on its output (default: the refinement ``features``; UDAIR: its degradation map)."""
        return features

    def normalize_input(self, x: Tensor) -> Tensor:
        """Input to the patch embedding (identity; UDAIR subtracts a mean)."""
        return x

    def residual_output(self, out: Tensor, x_norm: Tensor) -> Tensor:
        """Global residual: ``3×3(F) + input``."""
        return out + x_norm

    # ------------------------------------------------------------------ forward
    def _level(self, name: str, x: Tensor, ctx: Any) -> Tensor:
        blocks = getattr(self, name)
        return blocks(x, self.block_condition(name, ctx))

    def forward_padded(self, x: Tensor, ctx: Any = None) -> Tensor:
        """Restore an input whose sides are multiples of :attr:`size_multiple`.

        ``ctx`` defaults to :meth:`context` of ``x``; export this method (with a padded input)
        for ONNX/tracing, since padding is decided in Python.
        """
        return self._decode(x, ctx)[0]

    def forward_padded_with_maps(self, x: Tensor, ctx: Any = None) -> OutputWithMaps:
        """:meth:`forward_padded`'s output with the refinement features and
        :meth:`context_map` (what a wrapper acting on the output reads)."""
        out, features, ctx = self._decode(x, ctx)
        return OutputWithMaps(out, features, self.context_map(ctx, features))

    def _decode(self, x: Tensor, ctx: Any) -> tuple[Tensor, Tensor, Any]:
        """The output, the refinement features and the context used."""
        if ctx is None:
            ctx = self.context(x)
        xn = self.normalize_input(x)
        enc1 = self._level("encoder_level1", self.patch_embed(xn), ctx)
        enc2 = self._level("encoder_level2", self.down1_2(enc1), ctx)
        enc3 = self._level("encoder_level3", self.down2_3(enc2), ctx)
        lat = self._level("latent", self.down3_4(enc3), ctx)
        lat = self.fuse("latent", lat, ctx)

        dec3 = self.reduce_chan_level3(torch.cat([self.up4_3(lat), enc3], dim=1))
        dec3 = self._level("decoder_level3", dec3, ctx)
        dec3 = self.fuse("decoder_level3", dec3, ctx)

        dec2 = self.reduce_chan_level2(torch.cat([self.up3_2(dec3), enc2], dim=1))
        dec2 = self._level("decoder_level2", dec2, ctx)
        dec2 = self.fuse("decoder_level2", dec2, ctx)

        dec1 = torch.cat([self.up2_1(dec2), enc1], dim=1)
        dec1 = self._level("decoder_level1", dec1, ctx)
        dec1 = self._level("refinement", dec1, ctx)
        return self.residual_output(self.output(dec1), xn), dec1, ctx

    def forward(self, x: Tensor) -> Tensor:
        """Restore ``x`` (B×C×H×W, any H, W); returns the same shape."""
        xp, size = pad_to_multiple(x, self.size_multiple)
        return unpad(self.forward_padded(xp), size)


# ------------------------------------------------------------------------------ presets
RESTORMER_PRESETS: dict[str, Preset] = {
    "paper": Preset(
        {},
        parameters=26_126_644,
        description="Restormer (CVPR 2022), dim 48, blocks [4,6,6,8]",
        inference_bytes_per_pixel=6509,
    ),
    "small": Preset(
        {"dim": 32, "num_blocks": (2, 3, 3, 4), "num_refinement_blocks": 2},
        parameters=6_714_262,
        description="Restormer, dim 32, fewer blocks",
    ),
    "tiny": Preset(
        {"dim": 16, "num_blocks": (1, 1, 1, 1), "num_refinement_blocks": 1},
        parameters=800_547,
        description="Restormer, dim 16, one block per level (tests)",
        inference_bytes_per_pixel=2156,
    ),
}

register_presets("restormer", Restormer, RESTORMER_PRESETS)
