"""Validation scores per task, with or without Lightning.

:class:`ValidationScores` accumulates, per task, the output's PSNR and SSIM under a metric
protocol (:func:`aioir.metrics.get_protocol`) and the degraded input's PSNR;
:func:`summarize_validation` turns the (possibly all-reduced) sums into the ``val/*`` record:
per task ``psnr``, ``ssim``, ``input_psnr`` and ``gain`` (over the input; identity tasks such
as ``clean`` have none), the means ``val/psnr`` and ``val/ssim``, ``val/min_gain`` (the
worst task's gain), ``val/mean_gain`` (the mean gain over the tasks that have one) and
``val/floored_gain``: the mean gain minus every dB by which a task falls under its floor
(:data:`GAIN_FLOOR_DB` for a degradation task's gain, :data:`IDENTITY_FLOOR_DB` for an identity
task's PSNR) — "restore well on average, and leave no task worse than it came in". :class:`aioir.engine.module.RestorationModule` validates with them, and so
does the filter-bank fit (:mod:`aioir.engine.filter_bank`) without a trainer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "GAIN_FLOOR_DB",
    "IDENTITY_FLOOR_DB",
    "PSNR_CAP",
    "ValidationScores",
    "floored_gain",
    "summarize_validation",
    "validate_model",
]

#: PSNR of a perfect reconstruction is ``inf``; validation means cap it here (dB).
PSNR_CAP = 100.0
#: ``val/floored_gain``: a degradation task's gain under this costs the difference (dB).
GAIN_FLOOR_DB = 0.0
#: ``val/floored_gain``: an identity task (input = target) under this PSNR costs the difference.
IDENTITY_FLOOR_DB = 40.0


class ValidationScores:
    """Per-task sums (a tasks×4 float64 tensor on the CPU: output PSNR, output SSIM, count,
    input PSNR) of the images :meth:`add` is given."""

    def __init__(self, num_tasks: int, protocol: Any) -> None:
        self.protocol = protocol
        self.sums = torch.zeros(num_tasks, 4, dtype=torch.float64)

    def add(self, pred: Tensor, target: Tensor, inputs: Tensor, task_ids: Any) -> None:
        """Score a batch of restored images ``pred`` against ``target`` (and the ``inputs``)."""
        target = target.float()
        scores = self.protocol.score(pred.float(), target)
        before = self.protocol.score_psnr(inputs.float(), target)
        for tid, p, s, p0 in zip(
            torch.as_tensor(task_ids).tolist(), scores["psnr"], scores["ssim"], before
        ):
            self.sums[tid, 0] += min(float(p), PSNR_CAP)
            self.sums[tid, 1] += float(s)
            self.sums[tid, 2] += 1
            self.sums[tid, 3] += min(float(p0), PSNR_CAP)


def summarize_validation(sums: Tensor, task_names: Sequence[str]) -> dict[str, float]:
    """The ``val/*`` record of :class:`ValidationScores` sums (empty when nothing was scored)."""
    result: dict[str, float] = {}
    psnrs: dict[str, float] = {}
    inputs: dict[str, float] = {}
    ssims, gains = [], []
    for i, name in enumerate(task_names):
        n = float(sums[i, 2])
        if n == 0:
            continue
        p, s, p0 = float(sums[i, 0]) / n, float(sums[i, 1]) / n, float(sums[i, 3]) / n
        result[f"val/{name}/psnr"], result[f"val/{name}/ssim"] = p, s
        psnrs[name], inputs[name] = p, p0
        ssims.append(s)
        if p0 < PSNR_CAP:  # an identity task (input = target) has no gain to speak of
            result[f"val/{name}/input_psnr"] = p0
            result[f"val/{name}/gain"] = p - p0
            gains.append(p - p0)
    if not psnrs:
        return {}
    result["val/psnr"] = sum(psnrs.values()) / len(psnrs)
    result["val/ssim"] = sum(ssims) / len(ssims)
    if gains:
        result["val/min_gain"] = min(gains)
        result["val/mean_gain"] = sum(gains) / len(gains)
        result["val/floored_gain"] = floored_gain(psnrs, inputs)
    return result


def floored_gain(psnrs: Mapping[str, float], input_psnrs: Mapping[str, float]) -> float:
    """``val/floored_gain`` of per-task mean PSNRs and their inputs' (dB): the mean gain over
    the input of the degradation tasks, less every dB a task falls under its floor
    (:data:`GAIN_FLOOR_DB` of gain; an identity task, input PSNR at :data:`PSNR_CAP`:
    :data:`IDENTITY_FLOOR_DB` of PSNR). ``nan`` without a degradation task."""
    gains, shortfall = [], 0.0
    for name, p in psnrs.items():
        p0 = input_psnrs[name]
        if p0 < PSNR_CAP:
            gains.append(p - p0)
            shortfall += max(0.0, GAIN_FLOOR_DB - (p - p0))
        else:
            shortfall += max(0.0, IDENTITY_FLOOR_DB - p)
    return sum(gains) / len(gains) - shortfall if gains else float("nan")


@torch.no_grad()
def validate_model(
    restore: Callable[[Tensor], Tensor],
    batches: Iterable[dict[str, Any]],
    task_names: Sequence[str],
    protocol: Any,
) -> dict[str, float]:
    """The ``val/*`` record of ``restore`` (input batch → restored batch) over ``batches``
    (``input``, ``target``, ``task_id``), in one process."""
    scores = ValidationScores(len(task_names), protocol)
    for batch in batches:
        scores.add(restore(batch["input"]), batch["target"], batch["input"], batch["task_id"])
    return summarize_validation(scores.sums, task_names)
