"""ABAIR's loss terms: the phase-I segmentation term and the phase-III estimator term.

* ``abair_segmentation``: per-pixel cross-entropy between the segmentation head's logits and the
  degradation-CutMix label map of the batch (``data.cutmix: true``; 0 = clean, task id + 1).
* ``abair_estimator``: the estimator's task logits against the batch's task labels — softmax
  cross-entropy for single labels (``mode: single``), or sigmoid binary cross-entropy against
  multi-hot labels (``mode: multi``: a task named ``haze+rain`` is labelled haze and rain). The
  data task names are looked up among the model's adapter tasks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from aioir.errors import ConfigError
from aioir.losses.composite import LossInputs, LossTerm, register_loss
from aioir.tasks import COMPOSITE_SEPARATOR, split_composite

__all__ = ["EstimatorLoss", "SegmentationLoss", "task_targets"]


class SegmentationLoss:
    """Cross-entropy of the segmentation logits (B×C×H×W) against ``batch["label_map"]``."""

    needs_features = True

    def __call__(self, inputs: LossInputs) -> tuple[Tensor, dict[str, Tensor]]:
        logits = getattr(inputs.outputs, "segmentation", None)
        if logits is None:
            raise ConfigError(
                "losses.abair_segmentation: the model has no segmentation head "
                "(model.overrides.segmentation_classes)"
            )
        labels = inputs.batch.get("label_map")
        if labels is None:
            raise ConfigError("losses.abair_segmentation: the batch has no label map (data.cutmix)")
        labels = labels.to(logits.device).long()
        if int(labels.max()) >= logits.shape[1]:
            raise ConfigError(
                f"losses.abair_segmentation: label {int(labels.max())} but the head has "
                f"{logits.shape[1]} classes (segmentation_classes = 1 + tasks)"
            )
        loss = F.cross_entropy(logits.float(), labels)
        accuracy = (logits.argmax(1) == labels).float().mean()
        return loss, {"accuracy": accuracy.detach()}


def task_targets(
    batch_tasks: list[str], model_tasks: list[str], multi: bool, device: torch.device
) -> Tensor:
    """Class indices (``B``, single labels) or multi-hot rows (``B×K``) of ``batch_tasks``."""
    rows = []
    for name in batch_tasks:
        if not multi and COMPOSITE_SEPARATOR in name:
            raise ConfigError(
                f"losses.abair_estimator: composite task {name!r} needs mode: multi "
                "(sigmoid + BCE on multi-hot labels)"
            )
        parts = split_composite(name) if multi else [name]
        unknown = [p for p in parts if p not in model_tasks]
        if unknown:
            raise ConfigError(
                f"losses.abair_estimator: task {unknown[0]!r} has no adapter "
                f"(model tasks: {', '.join(model_tasks)})"
            )
        rows.append([model_tasks.index(p) for p in parts])
    if not multi:
        return torch.tensor([r[0] for r in rows], dtype=torch.long, device=device)
    out = torch.zeros(len(rows), len(model_tasks), device=device)
    for i, r in enumerate(rows):
        out[i, r] = 1.0
    return out


class EstimatorLoss:
    """CE (``single``) or multi-hot BCE (``multi``) of the estimator's logits."""

    needs_features = True

    def __init__(self, mode: str = "single") -> None:
        if mode not in ("single", "multi"):
            raise ConfigError(f"losses.abair_estimator.mode: 'single' or 'multi', not {mode!r}")
        self.multi = mode == "multi"

    def __call__(self, inputs: LossInputs) -> tuple[Tensor, dict[str, Tensor]]:
        logits = getattr(inputs.outputs, "task_logits", None)
        model_tasks = list(getattr(inputs.outputs, "tasks", ()))
        if logits is None or not model_tasks:
            raise ConfigError("losses.abair_estimator: the model has no estimator (no tasks)")
        if inputs.task_ids is None:
            raise ConfigError("losses.abair_estimator: the batch has no task ids")
        names = [inputs.task_names[int(i)] for i in inputs.task_ids]
        target = task_targets(names, model_tasks, self.multi, logits.device)
        if self.multi:
            loss = F.binary_cross_entropy_with_logits(logits.float(), target)
            hit = ((logits > 0).float() == target).all(1)
        else:
            loss = F.cross_entropy(logits.float(), target)
            hit = logits.argmax(1) == target
        return loss, {"accuracy": hit.float().mean().detach()}


@register_loss("abair_segmentation")
def _segmentation() -> LossTerm:
    """ABAIR phase I: per-pixel CE of the segmentation head on the CutMix label map."""
    return SegmentationLoss()


@register_loss("abair_estimator")
def _estimator(mode: str = "single") -> LossTerm:
    """ABAIR phase III: the estimator's CE (single labels) or BCE (multi-hot composites)."""
    return EstimatorLoss(mode)
