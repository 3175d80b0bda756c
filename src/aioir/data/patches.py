"""Task-labelled training patches from paired folders, several tasks in one dataset, hold-outs.

* :class:`PairedPatchDataset` — pairs of a :class:`~aioir.data.folders.PairedFolderDataset` as
  patches (random training crops from ``(seed, epoch, index)``, fixed crops, centre crops,
  resizes or whole images) with a task id;
* :class:`TaskConcat` — one dataset per task, concatenated, with ``task_indices`` for
  :class:`~aioir.data.samplers.TaskBalancedBatchSampler`;
* :func:`holdout_split` — a validation hold-out chosen by a hash of the file names.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from aioir.data.folders import PairedFolderDataset
from aioir.data.samplers import SizedDataset
from aioir.data.transforms import ensure_min_size, random_crop, random_flip_rotate
from aioir.degradations import seed_from_name
from aioir.errors import ConfigError

__all__ = ["PairedPatchDataset", "TaskConcat", "holdout_split"]


class PairedPatchDataset(Dataset):
    """Pairs from folders → patches, with a task id.

    ``mode``: ``random`` (training: crop and flips from ``(seed, epoch, index)``), ``fixed``
    (a random crop seeded by the file name: fixed crops), ``center_crop``, ``resize`` (bicubic to
    ``size×size``, UDAIR's validation) or ``full``. ``repeats`` duplicates the item list (each
    copy draws its own crops).
    """

    def __init__(
        self,
        dataset: PairedFolderDataset,
        indices: Sequence[int],
        task_id: int,
        task: str,
        size: int | None,
        mode: str = "random",
        augment: str = "d8",
        seed: int = 0,
        repeats: int = 1,
    ) -> None:
        self.dataset, self.task_id, self.task = dataset, task_id, task
        self.indices = list(indices) * max(1, int(repeats))
        self.size, self.mode, self.augment, self.seed = size, mode, augment, int(seed)
        if mode != "full" and not size:
            raise ConfigError(f"{task}: mode {mode!r} needs a patch size")
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.indices)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.dataset[self.indices[index]]
        x, y = item["input"], item["target"]
        name = str(item["name"])
        s = self.size
        if self.mode in ("random", "fixed"):
            key = f"train/{self.epoch}/{index}" if self.mode == "random" else f"fixed/{name}"
            gen = torch.Generator().manual_seed(seed_from_name(f"{self.task}/{key}", self.seed))
            x, y = random_crop([x, y], s, gen)
            if self.mode == "random" and self.augment != "none":
                x, y = random_flip_rotate([x, y], gen, mode=self.augment)
        elif self.mode == "center_crop":
            x, y = ensure_min_size(x, s), ensure_min_size(y, s)
            top, left = (x.shape[-2] - s) // 2, (x.shape[-1] - s) // 2
            x, y = x[:, top : top + s, left : left + s], y[:, top : top + s, left : left + s]
        elif self.mode == "resize":
            x, y = (
                F.interpolate(t[None], size=(s, s), mode="bicubic", align_corners=False)[0].clamp(
                    0, 1
                )
                for t in (x, y)
            )
        return {
            "input": x.contiguous(),
            "target": y.contiguous(),
            "task_id": self.task_id,
            "task": self.task,
            "name": name,
        }


class TaskConcat(Dataset):
    """Several datasets, each one task: ``task_id``/``task`` overridden, ``task_indices`` kept."""

    def __init__(self, parts: Sequence[tuple[SizedDataset, int, str]]) -> None:
        self.parts = list(parts)
        self.offsets = [0]
        for ds, _, _ in self.parts:
            self.offsets.append(self.offsets[-1] + len(ds))

    def __len__(self) -> int:
        return self.offsets[-1]

    @property
    def task_indices(self) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for i, (_, tid, _) in enumerate(self.parts):
            out.setdefault(tid, []).extend(range(self.offsets[i], self.offsets[i + 1]))
        return out

    def set_epoch(self, epoch: int) -> None:
        for ds, _, _ in self.parts:
            if hasattr(ds, "set_epoch"):
                ds.set_epoch(epoch)

    def __getitem__(self, index: int) -> dict[str, Any]:
        i = bisect.bisect_right(self.offsets, index) - 1
        ds, tid, task = self.parts[i]
        item = dict(ds[index - self.offsets[i]])
        item["task_id"], item["task"] = tid, task
        return item


def holdout_split(names: Sequence[str], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Split item positions into (train, val) by a hash of the names (order-independent)."""
    ranked = sorted(
        range(len(names)), key=lambda i: (seed_from_name(f"holdout/{names[i]}", seed), names[i])
    )
    n_val = max(1, round(fraction * len(names))) if len(names) > 1 else 0
    val = sorted(ranked[:n_val])
    return sorted(ranked[n_val:]), val
