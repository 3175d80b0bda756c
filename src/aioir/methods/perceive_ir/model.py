"""Perceive-IR's stage-2 restorer: a Restormer-style U-Net guided by semantics and a
degradation code.

* Encoder: patch embedding, three levels of plain transformer blocks (``encoder1..3``), down-
  sampling between them (``down1..3``).
* Compact feature extractor (``cfe``): 4 × [3×3 stride 2 + GELU] (3→32→64→96→128), global
  average pool, Linear → the degradation code ``Z`` (``code_dim``, L2-normalised).
* Prompt guidance (``pgm.<l>``, one per level, finest first): FiLM from ``[F_l ‖ Z]``,
  ``Y_l = X_l ⊙ (1 + γ) + β`` (:class:`aioir.nn.guidance.FiLM`).
* Latent and decoder levels: guided transformer blocks (:mod:`aioir.nn.guided_attention`) that
  all read the level's guidance map ``Y_l``; skips are concatenation + 1×1 (``reduce3..1``);
  decoder level 1 stays at ``dim`` channels; refinement blocks; 3×3 output + input.

The semantic vectors ``F_l`` come from (``semantics=``):

* ``"dinov2"`` (the paper): class tokens of a frozen DINOv2-base's hidden states 1, 4, 8, 12
  (F_1 → the finest decoder level, F_4 → the latent), loaded from a user-supplied file
  (``dinov2=PATH`` or the ``AIOIR_DINOV2`` environment variable) and kept out of the state dict;
* ``"self"``: the global average of the restorer's own encoder features at each level (no
  pretrained network; ``perceive-ir-lite``);
* ``"none"``: no semantic vector, the FiLM reads ``Z`` alone.

Attribute names are the authors' at the top level; inside the blocks the shared modules' names
are used and :func:`authors_key` renames the authors' checkpoint keys (registered in
:data:`aioir.models.checkpoints.KEY_MAPS`). The guidance vectors are per-image decisions
(:mod:`aioir.nn.image_statistics`), so the tiles of a tiled restoration share them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aioir.errors import ConfigError
from aioir.models.checkpoints import KEY_MAPS
from aioir.models.protocols import DegradationEmbedding
from aioir.models.registry import Preset, register_presets
from aioir.nn.blocks import BlockSequence, Downsample, TransformerBlock, Upsample
from aioir.nn.guidance import FiLM
from aioir.nn.guided_attention import GuidedBlockSequence
from aioir.nn.image_statistics import image_statistic, pool_crops
from aioir.nn.padding import pad_to_multiple, unpad

if TYPE_CHECKING:
    from aioir.nn.dinov2 import Dinov2Encoder

__all__ = [
    "DINOV2_ENV",
    "SEMANTIC_MODES",
    "CompactFeatureExtractor",
    "PerceiveIR",
    "PerceiveIROutput",
    "authors_key",
]

SEMANTIC_MODES = ("dinov2", "self", "none")
#: environment variable naming the DINOv2-base weights when no ``dinov2=`` option is given
DINOV2_ENV = "AIOIR_DINOV2"


class CompactFeatureExtractor(nn.Module):
    """4 × [3×3 stride-2 conv + GELU] (3→32→64→96→128), GAP, Linear, L2 normalisation.

    The pooled vector is a per-image decision (tiles share the image's code).
    """

    image_statistics = True

    def __init__(self, code_dim: int = 128, widths: Sequence[int] = (32, 64, 96, 128)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for width in widths:
            layers += [nn.Conv2d(channels, width, 3, stride=2, padding=1), nn.GELU()]
            channels = width
        layers.append(nn.AdaptiveAvgPool2d(1))
        self.body = nn.Sequential(*layers)
        self.projection = nn.Linear(channels, code_dim)

    def forward(self, x: Tensor) -> Tensor:
        pooled = image_statistic(self, x.shape[0], lambda: pool_crops(self.body(x).flatten(1)))
        return F.normalize(self.projection(pooled), dim=-1)


@dataclass
class PerceiveIROutput:
    """What :meth:`PerceiveIR.forward_features` returns.

    ``image``: the restored image; ``feature``: the degradation code ``Z`` of the input
    (``B×code_dim``, L2-normalised); ``positive``: the code of another crop of the same
    degraded input (training mode only, else ``None``); ``logit_scale``: ``None`` (no learned
    temperature); ``input``: the degraded input.
    """

    image: Tensor
    feature: Tensor | None
    positive: Tensor | None
    input: Tensor
    logit_scale: Tensor | None = None


class PerceiveIR(nn.Module):
    """Perceive-IR's restorer (see the module docstring).

    Args:
        dim: width of level 1 (levels ``dim, 2dim, 4dim, 8dim``).
        blocks: blocks per level (encoder L1–L3 and latent; decoders mirror L3–L1).
        heads: attention heads per level.
        refinement_blocks: plain blocks after decoder level 1 (at ``dim`` channels).
        ffn_expansion_factor: GDFN expansion.
        semantics: ``"dinov2"``, ``"self"`` or ``"none"`` (where ``F_l`` comes from).
        semantic_dim: width of a DINOv2 class token (768 for ViT-B).
        semantic_layers: DINOv2 hidden states giving F_1..F_4.
        code_dim: size of the degradation code (0: no code — the FiLM reads the semantic
            vector alone; an ablation, with ``semantics`` other than ``"none"``).
        positive_crop: side fraction of the random crop whose code is the contrastive positive.
        dinov2: DINOv2 weights (``semantics="dinov2"``; default ``$AIOIR_DINOV2``).
    """

    size_multiple: int = 8

    def __init__(
        self,
        dim: int = 48,
        blocks: Sequence[int] = (4, 6, 6, 8),
        heads: Sequence[int] = (1, 2, 4, 8),
        refinement_blocks: int = 4,
        ffn_expansion_factor: float = 2.66,
        semantics: str = "dinov2",
        semantic_dim: int = 768,
        semantic_layers: Sequence[int] = (1, 4, 8, 12),
        code_dim: int = 128,
        positive_crop: float = 0.5,
        dinov2: str | None = None,
    ) -> None:
        super().__init__()
        if len(blocks) != 4 or len(heads) != 4:
            raise ValueError("blocks and heads need one entry per level (4)")
        if semantics not in SEMANTIC_MODES:
            raise ValueError(f"semantics must be one of {SEMANTIC_MODES}, not {semantics!r}")
        if len(semantic_layers) != 4:
            raise ValueError("semantic_layers needs one hidden state per level (4)")
        if code_dim == 0 and semantics == "none":
            raise ValueError("code_dim=0 needs a semantic signal (semantics 'dinov2' or 'self')")
        if not 0.0 < positive_crop <= 1.0:
            raise ValueError(f"positive_crop must be in (0, 1], not {positive_crop}")
        self.dim = dim
        self.semantics = semantics
        self.semantic_layers = tuple(int(i) for i in semantic_layers)
        self.positive_crop = float(positive_crop)
        self.dinov2 = dinov2
        channels = (dim, dim * 2, dim * 4, dim * 8)
        opts: dict[str, Any] = {"ffn_expansion_factor": ffn_expansion_factor, "bias": True}

        def plain(level: int, depth: int) -> BlockSequence:
            return BlockSequence(
                *[TransformerBlock(channels[level], heads[level], **opts) for _ in range(depth)]
            )

        def guided(level: int, depth: int) -> GuidedBlockSequence:
            return GuidedBlockSequence(channels[level], heads[level], depth, **opts)

        self.embed = nn.Conv2d(3, dim, 3, padding=1)
        self.encoder1 = plain(0, blocks[0])
        self.down1 = Downsample(channels[0], bias=True)
        self.encoder2 = plain(1, blocks[1])
        self.down2 = Downsample(channels[1], bias=True)
        self.encoder3 = plain(2, blocks[2])
        self.down3 = Downsample(channels[2], bias=True)

        self.cfe = CompactFeatureExtractor(code_dim) if code_dim else None
        sem = {"dinov2": [semantic_dim] * 4, "self": list(channels), "none": [0] * 4}[semantics]
        self.pgm = nn.ModuleList(
            FiLM(s + code_dim, c, zero_init=False) for s, c in zip(sem, channels, strict=True)
        )
        self.latent = guided(3, blocks[3])

        self.up3 = Upsample(channels[3], bias=True)
        self.reduce3 = nn.Conv2d(channels[2] * 2, channels[2], 1)
        self.decoder3 = guided(2, blocks[2])
        self.up2 = Upsample(channels[2], bias=True)
        self.reduce2 = nn.Conv2d(channels[1] * 2, channels[1], 1)
        self.decoder2 = guided(1, blocks[1])
        self.up1 = Upsample(channels[1], bias=True)
        self.reduce1 = nn.Conv2d(channels[0] * 2, channels[0], 1)
        self.decoder1 = guided(0, blocks[0])
        self.refinement = plain(0, refinement_blocks)
        self.output = nn.Conv2d(dim, 3, 3, padding=1)
        # the frozen DINOv2, outside the state dict and the parameters (loaded on first use)
        self._semantic_encoder: Dinov2Encoder | None = None

    # ------------------------------------------------------------------ frozen semantics
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_semantic_encoder"] = None
        return state

    def _apply(self, fn: Any, recurse: bool = True) -> PerceiveIR:
        super()._apply(fn, recurse)
        if self._semantic_encoder is not None:
            self._semantic_encoder._apply(fn, recurse)
        return self

    def semantic_encoder(self) -> Dinov2Encoder:
        """The frozen DINOv2 (loaded from ``dinov2=`` / ``$AIOIR_DINOV2`` on first use)."""
        if self._semantic_encoder is None:
            from aioir.nn.dinov2 import load_dinov2

            path = self.dinov2 or os.environ.get(DINOV2_ENV)
            if not path:
                raise ConfigError(
                    "perceive-ir's semantic guidance needs the DINOv2-base weights: set the model "
                    f"option dinov2=PATH (YAML model.overrides.dinov2) or ${DINOV2_ENV}; "
                    "perceive-ir-lite needs none"
                )
            encoder = load_dinov2(path)
            ref = self.embed.weight
            object.__setattr__(self, "_semantic_encoder", encoder.to(ref.device))
        assert self._semantic_encoder is not None
        return self._semantic_encoder

    def load_external_weights(self) -> None:
        """Load the frozen DINOv2 now (``semantics="dinov2"``; nothing otherwise)."""
        if self.semantics == "dinov2":
            self.semantic_encoder()

    def set_semantic_encoder(self, encoder: Dinov2Encoder) -> None:
        """Use ``encoder`` (an already loaded DINOv2) as the frozen semantic network."""
        object.__setattr__(self, "_semantic_encoder", encoder)

    def _dinov2_vectors(self, x: Tensor) -> list[Tensor]:
        encoder = self.semantic_encoder()
        tokens = encoder.class_tokens(x, self.semantic_layers)
        return [
            image_statistic(pgm, x.shape[0], lambda t=t: pool_crops(t.to(x.dtype)))
            for pgm, t in zip(self.pgm, tokens, strict=True)
        ]

    # ------------------------------------------------------------------ forward
    def _guide(self, level: int, x: Tensor, semantic: Tensor | None, code: Tensor | None) -> Tensor:
        pgm = self.pgm[level]
        if self.semantics == "self":
            semantic = image_statistic(pgm, x.shape[0], lambda: pool_crops(x.mean(dim=(-2, -1))))
        parts = [t for t in (semantic, code) if t is not None]
        cond = parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)
        return pgm(x, cond)

    def forward_padded(self, x: Tensor, semantic_vectors: Sequence[Tensor] | None = None) -> Tensor:
        """Restore an input whose sides are multiples of :attr:`size_multiple`.

        ``semantic_vectors`` (F_1..F_4, ``B×semantic_dim`` each) replace the DINOv2's, e.g.
        when they were computed elsewhere (``semantics="dinov2"`` only).
        """
        return self._restore(x, self._code(x), semantic_vectors)

    def _code(self, x: Tensor) -> Tensor | None:
        return None if self.cfe is None else self.cfe(x)

    def _restore(
        self, x: Tensor, code: Tensor | None, semantic_vectors: Sequence[Tensor] | None = None
    ) -> Tensor:
        sem: list[Tensor | None] = [None] * 4
        if self.semantics == "dinov2":
            if semantic_vectors is None:
                semantic_vectors = self._dinov2_vectors(x)
            if len(semantic_vectors) != 4:
                raise ValueError("semantic_vectors needs one vector per level (4)")
            sem = list(semantic_vectors)
        elif semantic_vectors is not None:
            raise ValueError(f"semantics={self.semantics!r} takes no semantic_vectors")
        enc1 = self.encoder1(self.embed(x))
        enc2 = self.encoder2(self.down1(enc1))
        enc3 = self.encoder3(self.down2(enc2))
        lat = self.down3(enc3)
        lat = self.latent(lat, self._guide(3, lat, sem[3], code))
        dec3 = self.reduce3(torch.cat([self.up3(lat), enc3], dim=1))
        dec3 = self.decoder3(dec3, self._guide(2, dec3, sem[2], code))
        dec2 = self.reduce2(torch.cat([self.up2(dec3), enc2], dim=1))
        dec2 = self.decoder2(dec2, self._guide(1, dec2, sem[1], code))
        dec1 = self.reduce1(torch.cat([self.up1(dec2), enc1], dim=1))
        dec1 = self.decoder1(dec1, self._guide(0, dec1, sem[0], code))
        return self.output(self.refinement(dec1)) + x

    def forward(self, x: Tensor) -> Tensor:
        """Restore ``x`` (B×3×H×W, any H, W); returns the same shape."""
        xp, size = pad_to_multiple(x, self.size_multiple)
        return unpad(self.forward_padded(xp), size)

    def degradation_code(self, x: Tensor) -> Tensor:
        """The degradation code ``Z`` of each image (``B×code_dim``)."""
        if self.cfe is None:
            raise ValueError("this model has no degradation code (code_dim=0)")
        return self.cfe(x)

    def degradation_embedding(self, x: Tensor) -> DegradationEmbedding:
        """The code as a degradation embedding (``aioir embed``, ``aioir viz clusters``)."""
        code = self.degradation_code(x)
        return DegradationEmbedding(code[:, :, None, None], feature=code)

    def forward_features(self, x: Tensor) -> PerceiveIROutput:
        """The restored image, the degradation code and (in training) a positive code."""
        xp, size = pad_to_multiple(x, self.size_multiple)
        code = self._code(xp)
        image = unpad(self._restore(xp, code), size)
        positive = None
        if self.cfe is not None and self.training:
            positive = self.cfe(random_crop(x, self.positive_crop))
        return PerceiveIROutput(image, code, positive, x)


def random_crop(x: Tensor, fraction: float) -> Tensor:
    """One random crop (``fraction`` of each side, at least 16 px) at the same place for the
    whole batch — each sample's positive is another view of its own degraded image."""
    h, w = x.shape[-2:]
    ch, cw = max(min(h, 16), round(h * fraction)), max(min(w, 16), round(w * fraction))
    top = int(torch.randint(0, h - ch + 1, ()).item())
    left = int(torch.randint(0, w - cw + 1, ()).item())
    return x[..., top : top + ch, left : left + cw]


# ------------------------------------------------------------------------------ authors' keys
_RENAMES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(a), b)
    for a, b in (
        (r"^(encoder[123]|refinement)\.(\d+)\.attention\.", r"\1.\2.attn."),
        (r"\.(attn|mdta)\.project\.", r".\1.project_out."),
        (r"\.qkv_dw\.", ".qkv_dwconv."),
        (r"\.ffn\.depthwise\.", ".ffn.dwconv."),
        (r"^pgm\.(\d+)\.affine\.0\.", r"pgm.\1.fc1."),
        (r"^pgm\.(\d+)\.affine\.2\.", r"pgm.\1.fc2."),
    )
)


def authors_key(key: str) -> str:
    """The name of the authors' checkpoint key ``key`` in :class:`PerceiveIR` (ours unchanged)."""
    for pattern, replacement in _RENAMES:
        key = pattern.sub(replacement, key)
    return key


# ------------------------------------------------------------------------------ presets
PERCEIVE_IR_PRESETS: dict[str, Preset] = {
    "paper": Preset(
        {},
        parameters=33_901_111,
        description="Perceive-IR (TIP 2026), dim 48, blocks [4,6,6,8]; needs DINOv2-base",
    ),
    "small": Preset(
        {"dim": 32, "blocks": (2, 3, 3, 4), "refinement_blocks": 2},
        parameters=9_381_725,
        description="Perceive-IR, dim 32, fewer blocks; needs DINOv2-base",
    ),
    "tiny": Preset(
        {"dim": 12, "blocks": (1, 1, 1, 1), "refinement_blocks": 1},
        parameters=1_079_451,
        description="Perceive-IR, dim 12, one block per level (tests); needs DINOv2-base",
    ),
}

LITE_PRESETS: dict[str, Preset] = {
    "paper": Preset(
        {"semantics": "self"},
        parameters=33_186_871,
        description="Perceive-IR-lite: Perceive-IR's restorer at full size, semantic guidance "
        "from its own encoder (no DINOv2); not the paper's model",
    ),
    "small": Preset(
        {"semantics": "self", "dim": 32, "blocks": (2, 3, 3, 4), "refinement_blocks": 2},
        parameters=8_818_525,
        description="Perceive-IR-lite, dim 32, fewer blocks, own-feature semantics",
    ),
    "tiny": Preset(
        {"semantics": "self", "dim": 16, "blocks": (1, 1, 1, 1), "refinement_blocks": 1},
        parameters=1_278_289,
        description="Perceive-IR-lite, dim 16, one block per level (tests, CPU runs)",
    ),
}

register_presets("perceive-ir", PerceiveIR, PERCEIVE_IR_PRESETS)
register_presets("perceive-ir-lite", PerceiveIR, LITE_PRESETS)
KEY_MAPS["perceive-ir"] = authors_key
KEY_MAPS["perceive-ir-lite"] = authors_key
