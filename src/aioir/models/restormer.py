"""Restormer (Zamir et al., CVPR 2022): the 4-level transformer U-Net the other models extend.

:class:`Restormer` is both a model and the backbone of PromptIR, UDAIR, CPL, … Its hooks are
those of every :class:`~aioir.models.unet.FusionUNet` (the base it shares with
:class:`aioir.models.nafnet.NAFNet`): subclasses (or callers) plug into three decoder *fusion
points* without copying the U-Net:

* ``"latent"`` (after the latent blocks), ``"decoder_level3"`` and ``"decoder_level2"`` (after
  those decoder levels): :meth:`~aioir.models.unet.FusionUNet.fuse` is called with the stage
  name, the feature and a per-image context. By default it applies ``self.fusions[stage](x,
  ctx)`` when a module was given in ``fusions=`` and is the identity otherwise. Subclasses that
  must keep the reference key layout (PromptIR, UDAIR) override ``fuse`` and own flat attributes.
* :meth:`~aioir.models.unet.FusionUNet.context` computes the per-image context from the padded
  input (default ``None``); :meth:`Restormer.block_condition` picks what each block sequence
  receives as ``cond`` (see :class:`aioir.nn.blocks.TransformerBlock`'s ``guidance``).
* ``latent_out_channels`` is the width leaving the latent fusion (PromptIR's quirk: ``4·dim``).
* ``forward_padded_with_maps`` returns the output with the refinement features and a per-image
  context map (``context_map``; UDAIR: its degradation map), for wrappers that act on the
  output (:class:`aioir.models.filter_bank.FilterBankRestorer`).

Subclasses take the backbone's nine size arguments as ``**backbone``
(:class:`RestormerOptions`) and read them back from :attr:`Restormer.backbone_options`.

Input sizes: any ``H×W``; the input is reflect-padded at the bottom/right to a multiple of
``size_multiple`` (8) and the output cropped back. Output = ``3×3(F) + input``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

import torch
from torch import Tensor, nn

from aioir.models.registry import Preset, register_presets
from aioir.models.unet import FUSION_STAGES, FusionUNet, OutputWithMaps, fusion_modules
from aioir.nn.blocks import Downsample, OverlapPatchEmbed, Upsample, make_blocks

__all__ = ["FUSION_STAGES", "OutputWithMaps", "Restormer", "RestormerOptions"]


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


class Restormer(FusionUNet):
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
        self.fusions = fusion_modules(fusions)

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

    # ------------------------------------------------------------------ hooks for subclasses
    def block_condition(self, level: str, ctx: Any) -> Any:
        """``cond`` passed to the blocks of ``level`` (an attribute name; default ``None``)."""
        return None

    # ------------------------------------------------------------------ forward
    def _level(self, name: str, x: Tensor, ctx: Any) -> Tensor:
        blocks = getattr(self, name)
        return blocks(x, self.block_condition(name, ctx))

    def unet(self, x: Tensor, ctx: Any) -> tuple[Tensor, Tensor]:
        """The output convolution and the refinement features of a normalised input."""
        enc1 = self._level("encoder_level1", self.patch_embed(x), ctx)
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
        return self.output(dec1), dec1


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
