"""A NAFNet-style U-Net (Chen et al., ECCV 2022) with the decoder fusion hooks of Restormer.

Activation-free :class:`~aioir.nn.naf.NAFBlock` levels in the U-Net layout of
:class:`~aioir.models.restormer.Restormer` (same widths ``dim, 2dim, 4dim, 8dim`` at H … H/8,
same fusion points, same hooks: :class:`~aioir.models.unet.FusionUNet`), so a method written
for the Restormer backbone — UDAIR's degradation module — runs on it unchanged. NAFNet's own
pieces: a 3×3 convolution in and out (``intro``, ``ending``), downsampling by a 2×2 stride-2
convolution (``C → 2C``), upsampling by a 1×1 convolution and PixelShuffle (``C → C/2``), skip
connections *added* (not concatenated), no refinement stage, all convolutions biased.

Differences from the paper's NAFNet, so this is not a ``paper`` preset: three downsamplings
(the paper's image models use four, with a 16× size multiple) — the fusion points need the
latent at H/8 — and the LayerNorm is :class:`aioir.nn.norm.LayerNorm2d` (its keys ``body.*``).

Output = ``3×3(F) + input``; inputs are reflect-padded to a multiple of 8 and cropped back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

from torch import Tensor, nn

from aioir.models.registry import Preset, register_presets
from aioir.models.unet import FusionUNet, fusion_modules
from aioir.nn.naf import NAFBlockOptions, make_naf_blocks

__all__ = ["NAFNet", "NAFNetOptions"]


class NAFNetOptions(TypedDict, total=False):
    """:class:`NAFNet`'s size arguments, which subclasses take as ``**backbone``."""

    inp_channels: int
    out_channels: int
    dim: int
    num_blocks: Sequence[int]
    decoder_blocks: Sequence[int] | None
    dw_expand: int
    ffn_expand: int
    bias: bool


def _down(channels: int) -> nn.Module:
    """2×2 stride-2 convolution ``C → 2C``."""
    return nn.Conv2d(channels, 2 * channels, kernel_size=2, stride=2)


def _up(channels: int) -> nn.Module:
    """1×1 convolution ``C → 2C`` (no bias) and PixelShuffle(2): ``C/2`` channels at 2× size."""
    return nn.Sequential(nn.Conv2d(channels, 2 * channels, kernel_size=1, bias=False),
                         nn.PixelShuffle(2))  # fmt: skip


class NAFNet(FusionUNet):
    """NAFNet-block U-Net with decoder fusion hooks.

    Args:
        inp_channels, out_channels: image channels.
        dim: width of level 1 (levels are ``dim, 2dim, 4dim, 8dim``).
        num_blocks: blocks of encoder L1–L3 and of the latent.
        decoder_blocks: blocks of decoder L3, L2, L1 (default: mirror the encoder, as
            Restormer; NAFNet's own models use fewer decoder than encoder blocks).
        dw_expand, ffn_expand, bias: :class:`~aioir.nn.naf.NAFBlock` options.
        fusions: optional modules keyed by :data:`~aioir.models.unet.FUSION_STAGES`, called as
            ``m(x, ctx)``; they must keep the channel count.

    :attr:`backbone_options` keeps the size arguments (:class:`NAFNetOptions`) and
    :attr:`block_options` the three every block takes.
    """

    def __init__(
        self,
        inp_channels: int = 3,
        out_channels: int = 3,
        dim: int = 32,
        num_blocks: Sequence[int] = (2, 2, 4, 8),
        decoder_blocks: Sequence[int] | None = None,
        dw_expand: int = 2,
        ffn_expand: int = 2,
        bias: bool = True,
        fusions: Mapping[str, nn.Module] | None = None,
    ) -> None:
        super().__init__()
        if len(num_blocks) != 4:
            raise ValueError("num_blocks needs one entry per level (4)")
        dec = tuple(num_blocks[2::-1] if decoder_blocks is None else decoder_blocks)
        if len(dec) != 3:
            raise ValueError("decoder_blocks needs one entry per decoder level (3)")
        c1, c2, c3, c4 = dim, dim * 2, dim * 4, dim * 8
        self.backbone_options: NAFNetOptions = {
            "inp_channels": inp_channels, "out_channels": out_channels, "dim": dim,
            "num_blocks": tuple(num_blocks), "decoder_blocks": dec, "dw_expand": dw_expand,
            "ffn_expand": ffn_expand, "bias": bias,
        }  # fmt: skip
        blocks = self.block_options
        self.dim = dim
        self.intro = nn.Conv2d(inp_channels, dim, kernel_size=3, padding=1, bias=bias)
        self.encoder_level1 = make_naf_blocks(num_blocks[0], c1, **blocks)
        self.down1_2 = _down(c1)
        self.encoder_level2 = make_naf_blocks(num_blocks[1], c2, **blocks)
        self.down2_3 = _down(c2)
        self.encoder_level3 = make_naf_blocks(num_blocks[2], c3, **blocks)
        self.down3_4 = _down(c3)
        self.latent = make_naf_blocks(num_blocks[3], c4, **blocks)
        self.up4_3 = _up(c4)
        self.decoder_level3 = make_naf_blocks(dec[0], c3, **blocks)
        self.up3_2 = _up(c3)
        self.decoder_level2 = make_naf_blocks(dec[1], c2, **blocks)
        self.up2_1 = _up(c2)
        self.decoder_level1 = make_naf_blocks(dec[2], c1, **blocks)
        self.ending = nn.Conv2d(dim, out_channels, kernel_size=3, padding=1, bias=bias)
        self.fusions = fusion_modules(fusions)

    @property
    def block_options(self) -> NAFBlockOptions:
        """The keyword arguments every :class:`~aioir.nn.naf.NAFBlock` of the network takes."""
        o = self.backbone_options
        return {"dw_expand": o["dw_expand"], "ffn_expand": o["ffn_expand"], "bias": o["bias"]}

    @property
    def feature_channels(self) -> int:
        """Channels of decoder level 1's features (``dim``)."""
        return self.dim

    def unet(self, x: Tensor, ctx: Any) -> tuple[Tensor, Tensor]:
        """The ending convolution and decoder level 1's features of a normalised input."""
        enc1 = self.encoder_level1(self.intro(x))
        enc2 = self.encoder_level2(self.down1_2(enc1))
        enc3 = self.encoder_level3(self.down2_3(enc2))
        lat = self.fuse("latent", self.latent(self.down3_4(enc3)), ctx)
        dec3 = self.fuse("decoder_level3", self.decoder_level3(self.up4_3(lat) + enc3), ctx)
        dec2 = self.fuse("decoder_level2", self.decoder_level2(self.up3_2(dec3) + enc2), ctx)
        dec1 = self.decoder_level1(self.up2_1(dec2) + enc1)
        return self.ending(dec1), dec1


# ------------------------------------------------------------------------------ presets
NAFNET_PRESETS: dict[str, Preset] = {
    "small": Preset(
        {"dim": 16, "num_blocks": (1, 1, 4, 8), "decoder_blocks": (1, 1, 1)},
        parameters=1_213_427,
        description="NAFNet-block U-Net, dim 16, blocks [1,1,4,8] / decoder [1,1,1] (CPU; "
        "udair-naf-small's U-Net)",
    ),
    "tiny": Preset(
        {"dim": 16, "num_blocks": (1, 1, 1, 2), "decoder_blocks": (1, 1, 1)},
        parameters=407_603,
        description="NAFNet-block U-Net, dim 16, one or two blocks per level (tests)",
        inference_bytes_per_pixel=887,  # restore_large.py --bytes-per-pixel --threads 1
    ),
}

register_presets("nafnet", NAFNet, NAFNET_PRESETS)
