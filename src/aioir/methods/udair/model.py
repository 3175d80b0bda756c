"""UDAIR (Fan et al., 2025/2026): Restormer at half width + a codebook degradation module (DAM).

Pipeline (``docs/methods/udair.md``, "Backbone" to "Distribution adapters"):

* **DAM** (``dam``) on the raw padded input: a two-level VQ-VAE with EMA codebooks
  (``dam.codebook``; its mean subtraction is internal), whose bottom code ``q_b`` (``D×H/4×W/4``)
  goes through ``GCT(GELU(ConvMLP(q_b)))`` → degradation map ``d`` (``4·dim×H/4×W/4``).
* **Injection** into three decoder fusion points: ``g4 = dam_level4(avgpool₂(d))`` (latent),
  ``g3 = d`` (after decoder level 3), ``g2 = dam_level2(nearest↑₂(d))`` (after decoder level 2);
  each fusion is ``reduce(TB([x ‖ g]))`` (``dpm_level3/2/1`` + ``reduce_dpm_level3/2/1``).
* **Distribution adapters** ``distrib_adapt4/3/2`` replace ``g_ℓ`` by ``A_ℓ(g_ℓ)`` only when
  enabled (:meth:`UDAIR.set_adapters`); the plain forward skips them. When enabled, the decoder
  consumes the adapted maps *detached* (as the reference TTA runs the decoder under no-grad);
  set ``adapter_grad_to_decoder = True`` to change that.
* The VQ-VAE image decoder is kept for parameter/checkpoint parity (``vq_image_decoder=True``)
  but never computed; the contrastive feature ``f`` and the logit scale are only produced by
  :meth:`UDAIR.forward_features`.

``forward(x)`` returns the restored image. Inputs are reflect-padded to a multiple of 8
(:attr:`size_multiple`; U-Net and DAM both need 8) and cropped back; note that the DAM/GCT
statistics are computed on the padded image.

Test-time adaptation support: :meth:`forward_features` (``decode=False`` skips the U-Net: the
``g``'s depend only on the DAM), :meth:`adapter_parameters`, :meth:`adaptation_state` /
:meth:`load_adaptation_state` (episodic reset of adapters + codebook buffers).

Everything above except the backbone is :class:`UDAIRBase`, written against the hooks of
:class:`aioir.models.unet.FusionUNet`: :class:`UDAIR` is it on the Restormer backbone (the
paper's network), :class:`aioir.methods.udair.naf.UDAIRNAF` on a NAFNet-block U-Net (ours).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict, Unpack

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aioir.methods.udair.bank import SourceBank
from aioir.models.protocols import DegradationEmbedding
from aioir.models.registry import Preset, register_presets
from aioir.models.restormer import Restormer, RestormerOptions
from aioir.models.unet import FusionUNet
from aioir.nn.adapters import DistributionAdapter
from aioir.nn.blocks import ConvMLP, TransformerBlock
from aioir.nn.gates import GCT
from aioir.nn.padding import pad_to_multiple, unpad
from aioir.nn.vqvae import VQVAE2

__all__ = [
    "DAM",
    "RGB_MEAN",
    "UDAIR",
    "DegradationOptions",
    "UDAIRBase",
    "UDAIROutput",
    "split_degradation_options",
]

#: The backbone sizes UDAIR changes from Restormer's defaults (half width).
UDAIR_BACKBONE: RestormerOptions = {"dim": 24}

#: Mean subtracted from the input by the U-Net and by the VQ-VAE (DIV2K RGB mean).
RGB_MEAN: tuple[float, float, float] = (0.4488, 0.4371, 0.4040)


@dataclass
class UDAIROutput:
    """What :meth:`UDAIR.forward_features` returns.

    Attributes:
        image: restored image (B×3×H×W), ``None`` when ``decode=False``.
        feature: contrastive feature ``f`` = flatten(avgpool(d → 16×16)), B×(4·dim·256).
        logit_scale: ``exp(θ)`` (scalar tensor, unclamped).
        g4, g3, g2: injected maps at the three fusion points (adapted when adapters are enabled),
            at the *padded* resolution H/8, H/4, H/2.
        embedding: degradation map ``d`` (B×4·dim×H/4×W/4).
        codes: bottom-codebook indices (B×H/4×W/4).
    """

    image: Tensor | None
    feature: Tensor
    logit_scale: Tensor
    g4: Tensor
    g3: Tensor
    g2: Tensor
    embedding: Tensor
    codes: Tensor


class CodeProjector(nn.Module):
    """``z + W z + b``: a residual 1×1 projection of the DAM's bottom pre-quantisation features
    (``W``, ``b`` zero at start, so it begins as the identity). Learnt by codebook-alignment
    domain adaptation (:mod:`aioir.methods.udair.alignment`) to map target-domain features
    onto the source domain's codeword usage; ours, not in the authors' code."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(dim, dim, kernel_size=1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, z: Tensor) -> Tensor:
        return z + self.proj(z)


class DAM(nn.Module):
    """Degradation-aware module: VQ-VAE-2 bottom code → ConvMLP → GELU → GCT.

    Attribute names (``codebook``, ``dim``, ``gelu``, ``gct``) follow the reference code.
    ``code_projector=True`` adds a :class:`CodeProjector` before the bottom quantiser (keys
    ``dam.code_projector.*``; a domain-adapted model's).
    """

    def __init__(
        self,
        out_dim: int = 96,
        vq_channel: int = 128,
        vq_res_blocks: int = 3,
        vq_res_channel: int = 32,
        embed_dim: int = 64,
        n_embed: int = 512,
        mlp_hidden: int = 128,
        dropout: float = 0.3,
        vq_image_decoder: bool = True,
        input_mean: Sequence[float] = RGB_MEAN,
        code_projector: bool = False,
    ) -> None:
        super().__init__()
        self.codebook = VQVAE2(
            in_channel=3, channel=vq_channel, n_res_block=vq_res_blocks,
            n_res_channel=vq_res_channel, embed_dim=embed_dim, n_embed=n_embed,
            image_decoder=vq_image_decoder, input_mean=input_mean,
        )  # fmt: skip
        self.dim = ConvMLP(embed_dim, mlp_hidden, out_dim, drop=dropout)
        self.gelu = nn.GELU()
        self.gct = GCT(out_dim, mode="l2")
        self.code_projector = CodeProjector(embed_dim) if code_projector else None

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Degradation map ``d`` (B×out_dim×H/4×W/4) and bottom code indices (B×H/4×W/4)."""
        _, quant_b, _, _, id_b = self.codebook.encode(x, self.code_projector)
        return self.embed(quant_b), id_b

    def embed(self, quant_b: Tensor) -> Tensor:
        """The degradation map ``d`` of quantised bottom codes."""
        return self.gct(self.gelu(self.dim(quant_b)))

    def bottom_features(self, x: Tensor) -> Tensor:
        """Bottom pre-quantisation features (after the code projector when there is one)."""
        return self.codebook.bottom_features(x, self.code_projector)


class DegradationOptions(TypedDict, total=False):
    """The arguments of UDAIR's degradation side (:meth:`UDAIRBase.build_degradation_module`),
    which every UDAIR network takes beside its backbone's."""

    vq_channel: int
    vq_res_blocks: int
    vq_res_channel: int
    embed_dim: int
    n_embed: int
    dam_hidden: int
    dam_dropout: float
    vq_image_decoder: bool
    adapter_residual: bool
    adapter_zero_init: bool
    init_logit_scale: float
    feature_size: int
    code_projector: bool


def split_degradation_options(
    options: Mapping[str, Any], name: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(degradation options, backbone options)`` of a UDAIR network's keywords; ``TypeError``
    for the image channels (UDAIR is RGB only: the DAM subtracts an RGB mean)."""
    rgb_only = sorted({"inp_channels", "out_channels"} & set(options))
    if rgb_only:
        raise TypeError(f"{name}() got an unexpected keyword argument {rgb_only[0]!r}")
    keys = DegradationOptions.__optional_keys__
    degradation = {k: v for k, v in options.items() if k in keys}
    return degradation, {k: v for k, v in options.items() if k not in keys}


class UDAIRBase(FusionUNet):
    """UDAIR's degradation side on a fusion U-Net: DAM, injection and fusion at the three
    fusion points, distribution adapters, the contrastive feature and the TTA hooks.

    A network is this class before a backbone (``class UDAIR(UDAIRBase, Restormer)``) whose
    ``__init__`` builds the backbone, then calls :meth:`build_degradation_module` with its
    fusion block. Tests for "a UDAIR network" (the source bank, ``--tta``, ``aioir adapt``) are
    ``isinstance(model, UDAIRBase)``.

    Its :meth:`context_map` (what a wrapper such as the filter bank,
    :class:`aioir.models.filter_bank.FilterBankRestorer`, reads) is the degradation map ``d``
    (adapted when the adapters are on).
    """

    mean: Tensor
    #: the source bank a saved model carries (its ``source_bank`` artefact), else ``None``
    source_bank: SourceBank | None = None

    def build_degradation_module(
        self,
        fusion_block: Callable[[int], nn.Module],
        bias: bool,
        *,
        vq_channel: int = 128,
        vq_res_blocks: int = 3,
        vq_res_channel: int = 32,
        embed_dim: int = 64,
        n_embed: int = 512,
        dam_hidden: int = 128,
        dam_dropout: float = 0.3,
        vq_image_decoder: bool = True,
        adapter_residual: bool = False,
        adapter_zero_init: bool = False,
        init_logit_scale: float = math.log(1 / 0.07),
        feature_size: int = 16,
        code_projector: bool = False,
    ) -> None:
        """Build the degradation side after the backbone (keys and order: the reference's).

        Args (defaults = official config):
            fusion_block: ``fusion_block(C)`` → the block of a fusion point, on ``[x ‖ g]``
                (``C`` = twice the point's width), before a 1×1 reduction back to the width.
            bias: biases of the injection and reduction convolutions (the backbone's).
            vq_channel, vq_res_blocks, vq_res_channel, embed_dim, n_embed: VQ-VAE-2 sizes.
            dam_hidden, dam_dropout: DAM ConvMLP hidden width and dropout.
            vq_image_decoder: keep the unused VQ-VAE image decoder parameters (parity).
            adapter_residual, adapter_zero_init: distribution-adapter variant (see
                :class:`aioir.nn.adapters.DistributionAdapter`); the reference is ``False, False``.
            init_logit_scale: initial ``θ`` of the contrastive temperature (``ln(1/0.07)``).
            feature_size: pooled size of the contrastive feature (16).
            code_projector: a :class:`CodeProjector` before the bottom quantiser (codebook-
                alignment domain adaptation, ours; off in the reference).
        """
        dim = self.dim
        c2, c3, c4 = dim * 2, dim * 4, dim * 8
        self.register_buffer("mean", torch.tensor(RGB_MEAN).view(1, 3, 1, 1), persistent=False)
        self.dam = DAM(
            c3, vq_channel, vq_res_blocks, vq_res_channel, embed_dim, n_embed, dam_hidden,
            dam_dropout, vq_image_decoder, code_projector=code_projector,
        )  # fmt: skip
        adapter = {"residual": adapter_residual, "zero_init": adapter_zero_init}
        self.distrib_adapt2 = DistributionAdapter(c2, **adapter)
        self.distrib_adapt3 = DistributionAdapter(c3, **adapter)
        self.distrib_adapt4 = DistributionAdapter(c4, **adapter)
        self.dam_level4 = nn.Conv2d(c3, c4, kernel_size=3, padding=1, bias=bias)
        self.dpm_level3 = fusion_block(c4 * 2)
        self.reduce_dpm_level3 = nn.Conv2d(c4 * 2, c4, kernel_size=1, bias=bias)
        self.dpm_level2 = fusion_block(c3 * 2)
        self.reduce_dpm_level2 = nn.Conv2d(c3 * 2, c3, kernel_size=1, bias=bias)
        self.dam_level2 = nn.Conv2d(c3, c2, kernel_size=3, padding=1, bias=bias)
        self.dpm_level1 = fusion_block(c2 * 2)
        self.reduce_dpm_level1 = nn.Conv2d(c2 * 2, c2, kernel_size=1, bias=bias)
        self.logit_scale = nn.Parameter(torch.ones([]) * init_logit_scale)
        self.feature_size = feature_size
        self.adapters_enabled = False
        self.adapter_grad_to_decoder = False

    # ------------------------------------------------------------------ adapters / TTA
    def set_adapters(self, enabled: bool) -> UDAIRBase:
        """Apply (``True``) or skip (``False``, default) the distribution adapters."""
        self.adapters_enabled = bool(enabled)
        return self

    def adapters(self) -> dict[str, DistributionAdapter]:
        """The adapters by fusion level (``"g4"``, ``"g3"``, ``"g2"``)."""
        return {"g4": self.distrib_adapt4, "g3": self.distrib_adapt3, "g2": self.distrib_adapt2}

    def adapter_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of the three adapters (what test-time adaptation optimises)."""
        for adapter in self.adapters().values():
            yield from adapter.parameters()

    def adaptation_state(self) -> dict[str, Tensor]:
        """Snapshot (clones) of everything test-time adaptation changes: the adapter parameters
        and the codebook buffers (EMA-updated in train mode). Restore with
        :meth:`load_adaptation_state` for episodic (per-image) adaptation."""
        state = self.state_dict()
        keep = ("distrib_adapt", "dam.codebook.quantize_")
        return {k: v.detach().clone() for k, v in state.items() if k.startswith(keep)}

    @torch.no_grad()
    def load_adaptation_state(self, state: dict[str, Tensor]) -> None:
        """Copy a snapshot from :meth:`adaptation_state` back in place (optimiser refs stay valid)."""
        current = self.state_dict(keep_vars=True)
        for key, value in state.items():
            current[key].copy_(value)

    # ------------------------------------------------------------------ forward
    def normalize_input(self, x: Tensor) -> Tensor:
        return x - self.mean

    def residual_output(self, out: Tensor, x_norm: Tensor) -> Tensor:
        return out + x_norm + self.mean

    def _degradation(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """``(d, codes, g4, g3, g2)`` for a padded input; adapters applied when enabled."""
        d, codes = self.dam(x)
        g4 = self.dam_level4(F.avg_pool2d(d, 2))  # == adaptive pooling to H/8 (exact halving)
        g3 = d
        g2 = self.dam_level2(F.interpolate(d, scale_factor=2.0, mode="nearest"))
        if self.adapters_enabled:
            g4 = self.distrib_adapt4(g4)
            g3 = self.distrib_adapt3(g3)
            g2 = self.distrib_adapt2(g2)
        return d, codes, g4, g3, g2

    def _ctx(self, g4: Tensor, g3: Tensor, g2: Tensor) -> dict[str, Tensor]:
        if self.adapters_enabled and not self.adapter_grad_to_decoder:
            g4, g3, g2 = g4.detach(), g3.detach(), g2.detach()
        return {"latent": g4, "decoder_level3": g3, "decoder_level2": g2}

    def context(self, x: Tensor) -> dict[str, Tensor]:
        _, _, g4, g3, g2 = self._degradation(x)
        return self._ctx(g4, g3, g2)

    @property
    def context_map_channels(self) -> int:
        return self.dim * 4

    def context_map(self, ctx: Any, features: Tensor) -> Tensor:
        """The degradation map ``d`` (``g3``)."""
        return ctx["decoder_level3"]

    def fuse(self, stage: str, x: Tensor, ctx: Any) -> Tensor:
        if stage == "latent":
            block, reduce = self.dpm_level3, self.reduce_dpm_level3
        elif stage == "decoder_level3":
            block, reduce = self.dpm_level2, self.reduce_dpm_level2
        else:
            block, reduce = self.dpm_level1, self.reduce_dpm_level1
        return reduce(block(torch.cat([x, ctx[stage]], dim=1)))

    def degradation_embedding(self, x: Tensor) -> DegradationEmbedding:
        """The DAM's degradation map ``d``, contrastive feature and bottom codes of ``x``, with
        the adapters off (:class:`~aioir.models.protocols.DegradationEmbedder`)."""
        enabled = self.adapters_enabled
        self.set_adapters(False)
        try:
            out = self.forward_features(x, decode=False)
        finally:
            self.set_adapters(enabled)
        n_codes = int(self.dam.codebook.quantize_b.n_embed)
        return DegradationEmbedding(out.embedding, out.feature, out.codes, n_codes)

    def forward_features(self, x: Tensor, decode: bool = True) -> UDAIROutput:
        """Everything training and test-time adaptation need (see :class:`UDAIROutput`).

        ``decode=False`` skips the U-Net entirely (the fusion signals depend only on the DAM).
        """
        xp, size = pad_to_multiple(x, self.size_multiple)
        d, codes, g4, g3, g2 = self._degradation(xp)
        image = None
        if decode:
            image = unpad(self.forward_padded(xp, self._ctx(g4, g3, g2)), size)
        feature = F.adaptive_avg_pool2d(d, self.feature_size).flatten(1)
        return UDAIROutput(image, feature, self.logit_scale.exp(), g4, g3, g2, d, codes)


class UDAIROptions(RestormerOptions, DegradationOptions, total=False):
    """:class:`UDAIR`'s keywords besides ``fusion_heads``: the backbone's and the DAM's."""


class UDAIR(UDAIRBase, Restormer):
    """UDAIR restoration network (Restormer U-Net + DAM + distribution adapters).

    Args (keywords; defaults = official config): :class:`~aioir.models.restormer.Restormer`'s
    backbone sizes (:class:`~aioir.models.restormer.RestormerOptions` — RGB only, ``dim`` 24
    by default), the degradation side's (:class:`DegradationOptions`, see
    :meth:`UDAIRBase.build_degradation_module`), and
        fusion_heads: heads of the three fusion transformer blocks (default ``heads[2]``).
    """

    def __init__(self, *, fusion_heads: int | None = None, **options: Unpack[UDAIROptions]) -> None:
        degradation, backbone = split_degradation_options(options, "UDAIR")
        super().__init__(**{**UDAIR_BACKBONE, **backbone})
        heads = self.backbone_options["heads"][2] if fusion_heads is None else fusion_heads
        blocks = self.block_options
        self.build_degradation_module(
            lambda c: TransformerBlock(c, heads, **blocks),
            self.backbone_options["bias"],
            **degradation,
        )


# ------------------------------------------------------------------------------ presets
#: The degradation side of the small and tiny presets (on every backbone).
SMALL_DAM: DegradationOptions = {
    "vq_channel": 64, "vq_res_blocks": 2, "embed_dim": 32, "n_embed": 256, "dam_hidden": 64,
}  # fmt: skip
TINY_DAM: DegradationOptions = {
    "vq_channel": 32, "vq_res_blocks": 1, "vq_res_channel": 16, "embed_dim": 16, "n_embed": 64,
    "dam_hidden": 32,
}  # fmt: skip

UDAIR_PRESETS: dict[str, Preset] = {
    "paper": Preset(
        {},
        parameters=11_237_760,
        description="UDAIR, official config (dim 24; incl. adapters and unused VQ decoder)",
        inference_bytes_per_pixel=3190,
    ),
    "small": Preset(
        {"dim": 16, "num_blocks": (2, 3, 3, 4), "num_refinement_blocks": 2, **SMALL_DAM},
        parameters=3_508_074,
        description="UDAIR, dim 16, smaller VQ-VAE",
        inference_bytes_per_pixel=2610,
    ),
    "tiny": Preset(
        {"dim": 8, "num_blocks": (1, 1, 1, 1), "num_refinement_blocks": 1, **TINY_DAM},
        parameters=645_919,
        description="UDAIR, dim 8, one block per level (tests)",
        inference_bytes_per_pixel=1488,
    ),
}

register_presets("udair", UDAIR, UDAIR_PRESETS)
