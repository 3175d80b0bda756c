"""Perceive-IR's additions to the one training loop (training extras).

* ``difficulty_probe`` (:class:`DifficultyProbeConfig`): at the start of every epoch the model's
  mean PSNR on a fixed probe — ``per_task`` training crops per task spanning the quantiles of
  their input PSNR — becomes the reference that splits the proxies of the
  ``difficulty_perceptual`` loss into hard (weight 1.25) and easy (0.75) negatives. On by
  default whenever that loss is configured.
* ``quality_perceiver`` (:class:`QualityPerceiverConfig`): stage 1. While ``aioir train``
  trains a restorer (the *medium* generator), a three-tier quality scorer learns from each
  batch: low = the degraded input, medium = the restorer's current output (an imperfect
  restoration; kept only where it beats the input by ``margin_db``), high = the clean target.
  The scorer is the from-scratch perceiver of the weight-free variant
  (:mod:`aioir.methods.perceive_ir.perceiver`, ``kind: cnn``) or the paper's CoOp quality
  prompts for frozen CLIP (:mod:`aioir.methods.perceive_ir.quality_prompts`, ``kind:
  clip_prompts``). It is exported beside the restorer (``quality_perceiver.safetensors`` or
  ``quality_prompts.safetensors``), with its three-tier accuracy on the validation crops in
  the training record.

Registered when the package loads; Lightning is imported only when a run builds an extra.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from torch import nn

from aioir.engine.extras import (
    TrainingContext,
    TrainingExtra,
    TrainingExtraSpec,
    register_training_extra,
)
from aioir.errors import ConfigError
from aioir.models.wrappers import unwrap

__all__ = [
    "DIFFICULTY_PROBE_EXTRA",
    "QUALITY_PERCEIVER_EXTRA",
    "DifficultyProbeConfig",
    "QualityPerceiverConfig",
]


# ------------------------------------------------------------------------------ probe
@dataclasses.dataclass
class DifficultyProbeConfig:
    """The ``difficulty_probe`` section: the per-epoch PSNR probe of the DPL weights.

    ``enabled``: ``None`` = when a ``difficulty_perceptual`` loss is configured. ``per_task``:
    probe crops per task (the authors: 24); ``candidates``: crops drawn per task to choose them
    from (by input-PSNR quantiles); ``patch_size``: their size (default ``data.patch_size``).
    """

    enabled: bool | None = None
    per_task: int = 24
    candidates: int = 4
    patch_size: int | None = None
    batch_size: int = 8

    def validate(self, where: str) -> None:
        """ConfigError for values the types allow but the probe does not."""
        if self.per_task < 1 or self.candidates < 1 or self.batch_size < 1:
            raise ConfigError(f"{where}: per_task, candidates and batch_size must be ≥ 1")


class DifficultyProbeExtra(TrainingExtra):
    """Runs the probe at each epoch start and hands its PSNR to the DPL terms."""

    def __init__(self, ctx: TrainingContext) -> None:
        from aioir.methods.perceive_ir.callbacks import DifficultyProbeCallback

        section: DifficultyProbeConfig = ctx.section
        patch = section.patch_size or ctx.config.data.patch_size
        self.callback = DifficultyProbeCallback(
            lambda n: ctx.datamodule.bank_dataloader(n, patch, section.batch_size),
            section.per_task,
            section.candidates,
        )

    def callbacks(self) -> list[Any]:
        return [self.callback]

    def export(
        self, model: nn.Module, checkpoint: Mapping[str, Any], record: dict[str, Any]
    ) -> None:
        record["difficulty_probe"] = {"psnr_by_epoch": list(self.callback.history)}


def _has_dpl(config: Any) -> bool:
    return "difficulty_perceptual" in (config.losses or {})


def _build_probe(ctx: TrainingContext) -> DifficultyProbeExtra | None:
    enabled: bool | None = ctx.section.enabled
    if enabled and not _has_dpl(ctx.config):
        raise ConfigError("difficulty_probe.enabled: no difficulty_perceptual loss to weight")
    if not (_has_dpl(ctx.config) if enabled is None else enabled):
        return None
    return DifficultyProbeExtra(ctx)


DIFFICULTY_PROBE_EXTRA = register_training_extra(
    TrainingExtraSpec(
        "difficulty_probe",
        DifficultyProbeConfig,
        _build_probe,
        "Perceive-IR's per-epoch PSNR probe (difficulty weights of the perceptual loss)",
    )
)


# ------------------------------------------------------------------------------ perceiver
@dataclasses.dataclass
class QualityPerceiverConfig:
    """The ``quality_perceiver`` section: train a three-tier quality scorer beside the restorer.

    ``enabled``: off unless set. ``kind``: ``cnn`` (the from-scratch perceiver of
    perceive-ir-lite; ``widths`` / ``hidden`` its size) or ``clip_prompts`` (the paper: CoOp
    context of ``context_length`` tokens for frozen CLIP from ``clip``, the class words'
    embeddings from ``vocabulary`` when given). ``start_step``: first optimiser step at which it
    learns (the restorer's output must have left the input behind); ``margin_db``: a medium
    sample counts only where its PSNR beats the input's by this much; ``clean_db``: inputs above
    this PSNR (the ``clean`` task) are not used as low samples; ``lr`` / ``weight_decay``: its
    AdamW; ``crop``: side of the random crop it sees (default the whole patch);
    ``val_items``: validation batches for the exported accuracy (0 = none).
    """

    enabled: bool = False
    kind: str = "cnn"
    start_step: int = 0
    margin_db: float = 0.5
    clean_db: float = 45.0
    lr: float = 4e-4
    weight_decay: float = 1e-4
    crop: int | None = None
    widths: list[int] = dataclasses.field(default_factory=lambda: [32, 64, 96, 128])
    hidden: int = 128
    clip: str | None = None
    vocabulary: str | None = None
    context_length: int = 16
    val_items: int = 50

    def validate(self, where: str) -> None:
        """ConfigError for values the types allow but the perceiver does not."""
        if self.kind not in ("cnn", "clip_prompts"):
            raise ConfigError(f"{where}.kind: expected 'cnn' or 'clip_prompts', not {self.kind!r}")
        if self.lr <= 0 or self.start_step < 0 or self.val_items < 0:
            raise ConfigError(f"{where}: lr must be > 0, start_step and val_items ≥ 0")
        if self.crop is not None and self.crop < 16:
            raise ConfigError(f"{where}.crop: at least 16 pixels")
        if not 1 <= self.context_length <= 75:
            raise ConfigError(f"{where}.context_length: 1 to 75 tokens")


def _scorer(c: QualityPerceiverConfig) -> tuple[nn.Module, Any, Any]:
    """The trainable module, its logits function and its inference scorer."""
    from aioir.errors import AioirError

    if c.kind == "cnn":
        from aioir.methods.perceive_ir.perceiver import QualityPerceiver

        perceiver = QualityPerceiver(c.widths, c.hidden)
        return perceiver, perceiver, perceiver
    from aioir.methods.perceive_ir.quality_prompts import QualityPromptLearner, QualityPromptScorer
    from aioir.nn.clip import load_clip

    if not c.clip:
        raise ConfigError(
            "quality_perceiver.clip: set it to the OpenAI CLIP ViT-B/32 weights file "
            "(kind: clip_prompts)"
        )
    try:
        clip = load_clip(c.clip)
        learner = QualityPromptLearner(clip, c.context_length, c.vocabulary)
    except AioirError as exc:
        raise ConfigError(f"quality_perceiver: {exc}") from exc
    scorer = QualityPromptScorer(clip, learner)
    scale = float(clip.logit_scale.exp())
    return learner, lambda images: scale * scorer(images), scorer


class QualityPerceiverExtra(TrainingExtra):
    """The scorer's training (a callback) and its export beside the restorer."""

    def __init__(self, ctx: TrainingContext) -> None:
        from aioir.methods.perceive_ir.callbacks import QualityPerceiverCallback

        c: QualityPerceiverConfig = ctx.section
        self.config = c
        self.datamodule = ctx.datamodule
        module, logits, self.scorer = _scorer(c)
        self.callback = QualityPerceiverCallback(
            module, c.lr, c.weight_decay, c.start_step, c.margin_db, c.clean_db, c.crop, logits
        )

    def callbacks(self) -> list[Any]:
        return [self.callback]

    def export(
        self, model: nn.Module, checkpoint: Mapping[str, Any], record: dict[str, Any]
    ) -> None:
        from aioir.methods.perceive_ir.artifacts import PerceiverArtifact, PromptsArtifact
        from aioir.methods.perceive_ir.callbacks import three_tier_accuracy
        from aioir.methods.perceive_ir.perceiver import QualityPerceiver
        from aioir.methods.perceive_ir.quality_prompts import QualityPromptLearner

        module = self.callback.module.eval()
        entry: dict[str, Any] = {"kind": self.config.kind, "steps": self.callback.steps}
        if self.config.val_items:
            loader = self.datamodule.val_dataloader()
            entry["val_accuracy"] = three_tier_accuracy(
                self.scorer, model, loader, self.config.val_items, self.config.margin_db
            )
        if isinstance(module, QualityPerceiver):
            unwrap(model).quality_perceiver = PerceiverArtifact(module)
        elif isinstance(module, QualityPromptLearner):
            context = module.context.detach().cpu()
            unwrap(model).quality_prompts = PromptsArtifact(context, module.words)
        record["quality_perceiver"] = entry


def _build_perceiver(ctx: TrainingContext) -> QualityPerceiverExtra | None:
    return QualityPerceiverExtra(ctx) if ctx.section.enabled else None


QUALITY_PERCEIVER_EXTRA = register_training_extra(
    TrainingExtraSpec(
        "quality_perceiver",
        QualityPerceiverConfig,
        _build_perceiver,
        "Perceive-IR-lite's stage 1: the three-tier quality perceiver",
    )
)
