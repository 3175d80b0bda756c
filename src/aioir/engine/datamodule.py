"""Training/validation data from a :class:`~aioir.engine.config.DataConfig`.

``data.kind``:

* ``synthetic`` — a photo corpus (``aioir data photos``; ``data.root`` holds ``SOURCES.tsv``,
  or plain ``train/`` and ``val/`` folders of clean photos) + a task spec: training patches are
  degraded on the fly from the ``train`` split; validation = deterministic synthetic items on
  the ``val`` split (never ``test``).
* ``promptir-3task`` / ``promptir-5task`` — the PromptIR/AdaIR tree; noise is synthesised on the
  clean ``Train/Denoise`` images at ``data.noise_sigmas``; ``data.repeats`` are the repeat
  factors (``docs/protocols.md``, "The 3-task setting", "The 5-task setting"). Validation holds
  out ``data.val_fraction`` of each training part (the ``test/`` sets are never used).
* ``udair`` — UDAIR's tree, five source tasks in index order (noise, haze, rain, lowlight,
  underwater); validation is a hold-out of the training sets (``docs/methods/udair.md``,
  "Differences from the reference code"; ``data.val_split: val`` uses ``val/`` instead).

Training items are a pure function of ``(seed, epoch, index)``: the batch sampler yields
``(epoch, index)`` pairs, so crops and degradations do not depend on workers or on resuming.
The task-balanced sampler (UDAIR: ``M`` per task, fixed order) or a plain shuffled one
(``data.sampler: random``) shards batches over DDP ranks, and its position is saved in the
checkpoint (:meth:`RestorationDataModule.state_dict`) for exact resume.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeAlias

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from aioir.data.folders import PairedFolderDataset
from aioir.data.layouts import PROMPTIR_TASKS, UDAIR_TASKS, get_layout
from aioir.data.patches import PairedPatchDataset, TaskConcat, holdout_split
from aioir.data.photos import clean_photo_splits
from aioir.data.samplers import EpochBatchSampler, EpochIndexedDataset, TaskBalancedBatchSampler
from aioir.data.synthetic import SyntheticDegradationDataset, TaskSpec
from aioir.data.task_specs import fixed_gaussian_noise, parse_task_specs
from aioir.degradations import seed_from_name
from aioir.engine.config import DataConfig
from aioir.errors import ConfigError, DatasetLayoutError
from aioir.io import list_images

__all__ = ["PROMPTIR_REPEATS", "RestorationDataModule"]

#: PromptIR/AdaIR repeat factors per epoch (noise: per σ).
PROMPTIR_REPEATS = {"noise": 3, "rain": 120, "haze": 1, "blur": 5, "lowlight": 20}

#: What the training and validation sets are: items of known tasks, with ``task_indices``.
TaskDataset: TypeAlias = SyntheticDegradationDataset | TaskConcat


# ------------------------------------------------------------------------------ data module
class RestorationDataModule(pl.LightningDataModule):
    """Builds the datasets of a :class:`DataConfig` (see the module docstring)."""

    def __init__(self, config: DataConfig, root: Path, seed: int = 0) -> None:
        super().__init__()
        self.config, self.root, self.seed = config, Path(root), int(seed)
        if not self.root.is_dir():
            raise DatasetLayoutError(f"{self.root}: data folder does not exist (data.root)")
        self.task_names = self._task_names()
        self.train_set: TaskDataset | None = None
        self.val_set: TaskDataset | None = None
        self.batch_sampler: EpochBatchSampler | None = None
        self._pending_state: dict[str, Any] | None = None
        self._holdout_train: dict[str, Any] = {}

    # -------------------------------------------------------------- task lists
    def _task_names(self) -> list[str]:
        c = self.config
        if c.kind == "synthetic":
            return list(parse_task_specs(c.tasks))
        names = list(UDAIR_TASKS if c.kind == "udair" else PROMPTIR_TASKS[c.kind])
        if c.tasks is not None:
            wanted = list(c.tasks)
            unknown = [t for t in wanted if t not in names]
            if unknown:
                raise ConfigError(
                    f"data.tasks: {unknown[0]!r} is not a task of {c.kind} ({', '.join(names)})"
                )
            names = [t for t in names if t in wanted]
        return names

    @property
    def samples_per_task(self) -> int | None:
        """``M`` of task-ordered batches, ``None`` with the random sampler."""
        return self.config.samples_per_task if self.config.sampler == "task_balanced" else None

    @property
    def train_batch_size(self) -> int:
        c = self.config
        return (
            len(self.task_names) * c.samples_per_task
            if c.sampler == "task_balanced"
            else c.batch_size
        )

    # -------------------------------------------------------------- building
    def _world(self) -> tuple[int, int]:
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return 1, 0
        return int(trainer.world_size), int(trainer.global_rank)

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        c = self.config
        if c.kind == "synthetic":
            self.train_set, self.val_set = self._synthetic()
        elif c.kind == "udair":
            self.train_set, self.val_set = self._udair()
        else:
            self.train_set, self.val_set = self._promptir()

    def _synthetic(self) -> tuple[SyntheticDegradationDataset, SyntheticDegradationDataset]:
        c = self.config
        train, val = clean_photo_splits(self.root)
        if not train or not val:
            raise DatasetLayoutError(f"{self.root}: the train and val splits must both hold photos")
        specs = parse_task_specs(c.tasks)
        self._bank_images = train
        self._specs = specs
        tr = SyntheticDegradationDataset(
            train, specs, c.patch_size, c.severity, self.seed, False, cutmix=c.cutmix,
            length=c.items_per_task, augment=c.augment, **c.clean_patch_jitters(),
        )  # fmt: skip
        va = SyntheticDegradationDataset(
            val, specs, c.val_size if c.val_mode != "full" else None, c.severity, c.val_seed,
            True, length=c.val_items_per_task,
        )  # fmt: skip
        return tr, va

    def _paired_part(
        self, ds: PairedFolderDataset, tid: int, task: str, repeats: int
    ) -> tuple[PairedPatchDataset, PairedPatchDataset]:
        c = self.config
        names = [str(p[0].name) for p in ds.pairs]
        tr_idx, va_idx = holdout_split(names, c.val_fraction, c.val_seed)
        self._holdout_train[task] = (ds, tr_idx)
        tr = PairedPatchDataset(
            ds, tr_idx, tid, task, c.patch_size, "random", c.augment, self.seed, repeats
        )
        va = PairedPatchDataset(ds, va_idx, tid, task, c.val_size, c.val_mode, "none", c.val_seed)
        return tr, va

    def _udair(self) -> tuple[TaskConcat, TaskConcat]:
        c = self.config
        layout = get_layout("udair")
        train = {ds.task: ds for ds in layout.paired_datasets(self.root, "train").values()}
        val_sets = {}
        if c.val_split == "val":
            val_sets = {ds.task: ds for ds in layout.paired_datasets(self.root, "val").values()}
        tr_parts, va_parts = [], []
        for tid, task in enumerate(self.task_names):
            if task not in train:
                raise DatasetLayoutError(f"{self.root}: no training folder for task {task}")
            if c.val_split == "val":
                if task not in val_sets:
                    raise DatasetLayoutError(f"{self.root}: no val/ folder for task {task}")
                ds = train[task]
                self._holdout_train[task] = (ds, list(range(len(ds))))
                tr = PairedPatchDataset(
                    ds, range(len(ds)), tid, task, c.patch_size, "random", c.augment, self.seed
                )
                vds = val_sets[task]
                va = PairedPatchDataset(
                    vds, range(len(vds)), tid, task, c.val_size, c.val_mode, "none", c.val_seed
                )
            else:
                tr, va = self._paired_part(train[task], tid, task, c.repeats.get(task, 1))
            tr_parts.append((tr, tid, task))
            va_parts.append((va, tid, task))
        return TaskConcat(tr_parts), TaskConcat(va_parts)

    def _promptir(self) -> tuple[TaskConcat, TaskConcat]:
        c = self.config
        layout = get_layout(c.kind)
        paired = {ds.task: ds for ds in layout.paired_datasets(self.root, "train").values()}
        repeats = {**PROMPTIR_REPEATS, **c.repeats}
        tr_parts, va_parts = [], []
        for tid, task in enumerate(self.task_names):
            tr: SyntheticDegradationDataset | PairedPatchDataset
            va: SyntheticDegradationDataset | PairedPatchDataset
            if task == "noise":
                clean = list_images(self.root / "Train/Denoise", recursive=True)
                if not clean:
                    raise DatasetLayoutError(f"{self.root / 'Train/Denoise'}: no clean images")
                tr_idx, va_idx = holdout_split([p.name for p in clean], c.val_fraction, c.val_seed)
                spec = {"noise": TaskSpec(tuple(fixed_gaussian_noise(s) for s in c.noise_sigmas))}
                n = len(tr_idx)
                tr = SyntheticDegradationDataset(
                    [clean[i] for i in tr_idx], spec, c.patch_size, "random", self.seed,
                    length=n * repeats["noise"] * len(c.noise_sigmas), augment=c.augment,
                )  # fmt: skip
                va = SyntheticDegradationDataset(
                    [clean[i] for i in va_idx], spec, c.val_size if c.val_mode != "full" else None,
                    "random", c.val_seed, True, length=max(len(va_idx), c.val_items_per_task),
                )  # fmt: skip
                self._holdout_train[task] = ([clean[i] for i in tr_idx], spec)
            else:
                if task not in paired:
                    raise DatasetLayoutError(f"{self.root}: no training part for task {task}")
                tr, va = self._paired_part(paired[task], tid, task, repeats.get(task, 1))
            tr_parts.append((tr, tid, task))
            va_parts.append((va, tid, task))
        return TaskConcat(tr_parts), TaskConcat(va_parts)

    # -------------------------------------------------------------- loaders
    def _generator(self, salt: str) -> torch.Generator:
        # DataLoaders draw their base seed from this, never from the global RNG (exact resume)
        return torch.Generator().manual_seed(seed_from_name(salt, self.seed))

    def train_dataloader(self) -> DataLoader:
        self.setup("fit")
        c = self.config
        world, rank = self._world()
        assert self.train_set is not None
        if c.sampler == "task_balanced":
            indices = self.train_set.task_indices
            m = c.samples_per_task
        else:
            indices = {0: list(range(len(self.train_set)))}
            m = c.batch_size
        sampler = TaskBalancedBatchSampler(
            indices, m, shuffle=True, seed=self.seed, num_replicas=world, rank=rank,
            epoch_length=c.epoch_length,
        )  # fmt: skip
        self.batch_sampler = EpochBatchSampler(sampler)
        if self._pending_state is not None:
            self.batch_sampler.load_state_dict(self._pending_state)
            self._pending_state = None
        return DataLoader(
            EpochIndexedDataset(self.train_set),
            batch_sampler=self.batch_sampler,
            num_workers=c.num_workers,
            # the epoch travels in each key, so workers can live across epochs
            persistent_workers=c.num_workers > 0,
            generator=self._generator("train-loader"),
        )

    def val_dataloader(self) -> DataLoader:
        self.setup("fit")
        world, rank = self._world()
        assert self.val_set is not None
        shard = Subset(self.val_set, list(range(rank, len(self.val_set), world)))
        bs = 1 if self.config.val_mode == "full" else self.config.val_batch_size
        return DataLoader(
            shard, batch_size=bs, shuffle=False, num_workers=self.config.num_workers,
            generator=self._generator("val-loader"),
        )  # fmt: skip

    def synthetic_pairs(
        self, specs: Mapping[str, TaskSpec], items_per_task: int, patch_size: int, salt: int
    ) -> SyntheticDegradationDataset:
        """Fixed crops of the training photos degraded as ``specs`` say (synthetic data only),
        with the training data's photometric jitter; ``salt`` offsets the seed."""
        self.setup("fit")
        c = self.config
        if c.kind != "synthetic":
            raise ConfigError(f"data.kind {c.kind!r}: synthetic training pairs need kind synthetic")
        return SyntheticDegradationDataset(
            self._bank_images, dict(specs), patch_size, "random", self.seed + salt, True,
            length=items_per_task, augment="none", **c.clean_patch_jitters(),
        )  # fmt: skip

    def train_photo_names(self) -> list[str]:
        """The names of the training photos that :meth:`synthetic_pairs` cuts its crops from,
        as its items name them (synthetic data only)."""
        self.setup("fit")
        if self.config.kind != "synthetic":
            raise ConfigError(
                f"data.kind {self.config.kind!r}: training photos need kind synthetic"
            )
        return [Path(p).name for p in self._bank_images]

    def task_spec(self, task: str) -> TaskSpec:
        """The training spec of one task (synthetic data only)."""
        self.setup("fit")
        if self.config.kind != "synthetic":
            raise ConfigError(f"data.kind {self.config.kind!r}: task specs need kind synthetic")
        if task not in self._specs:
            raise ConfigError(f"data.tasks: no task {task!r} (have {', '.join(self._specs)})")
        return self._specs[task]

    def bank_dataloader(self, items_per_task: int, patch_size: int, batch_size: int) -> DataLoader:
        """Fixed training crops (``items_per_task`` per task) for the final-pass source bank."""
        self.setup("fit")
        c = self.config
        if c.kind == "synthetic":
            ds: Dataset = SyntheticDegradationDataset(
                self._bank_images, self._specs, patch_size, c.severity, self.seed + 2, True,
                length=items_per_task,
            )  # fmt: skip
        else:
            parts = []
            for tid, task in enumerate(self.task_names):
                held = self._holdout_train[task]
                part: SyntheticDegradationDataset | PairedPatchDataset
                if task == "noise" and c.kind != "udair":
                    images, spec = held
                    part = SyntheticDegradationDataset(
                        images,
                        spec,
                        patch_size,
                        "random",
                        self.seed + 2,
                        True,
                        length=items_per_task,
                    )
                else:
                    ds_, idx = held
                    idx = (list(idx) * math.ceil(items_per_task / max(1, len(idx))))[
                        :items_per_task
                    ]
                    part = PairedPatchDataset(
                        ds_, idx, tid, task, patch_size, "fixed", "none", self.seed + 2
                    )
                parts.append((part, tid, task))
            ds = TaskConcat(parts)
        return DataLoader(
            ds, batch_size=batch_size, shuffle=False, generator=self._generator("bank")
        )

    # -------------------------------------------------------------- resume
    def state_dict(self) -> dict[str, Any]:
        if self.batch_sampler is None:
            return {}
        done = None
        trainer = getattr(self, "trainer", None)
        if trainer is not None:
            done = int(trainer.fit_loop.epoch_loop.batch_progress.current.ready)
        return {"sampler": self.batch_sampler.state_dict(batches_done=done)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "sampler" in state:
            if self.batch_sampler is not None:
                self.batch_sampler.load_state_dict(state["sampler"])
            else:
                self._pending_state = dict(state["sampler"])

    def describe(self) -> dict[str, Any]:
        """What the run trained on (for the export JSON)."""
        c = self.config
        out: dict[str, Any] = {
            "kind": c.kind,
            "root": str(self.root),
            "tasks": list(self.task_names),
            "patch_size": c.patch_size,
            "train_items": len(self.train_set) if self.train_set is not None else None,
            "val_items": len(self.val_set) if self.val_set is not None else None,
            "sampler": c.sampler,
            "batch_size": self.train_batch_size,
        }
        if c.kind == "synthetic":
            out["severity"] = c.severity
        return out
