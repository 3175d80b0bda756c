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

import dataclasses
import functools
import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Subset

from aioir.data import (
    PairedFolderDataset,
    SyntheticDegradationDataset,
    TaskBalancedBatchSampler,
    TaskSpec,
)
from aioir.data.transforms import ensure_min_size, random_crop, random_flip_rotate
from aioir.degradations import degradation_class, seed_from_name
from aioir.degradations.base import uniform
from aioir.engine.config import DataConfig
from aioir.errors import ConfigError, DatasetLayoutError

__all__ = [
    "EpochBatchSampler",
    "PairedPatchDataset",
    "ParamDegradation",
    "RestorationDataModule",
    "TaskConcat",
    "parse_task_specs",
]

#: UDAIR source tasks in index order (the layout's folder order).
UDAIR_TASKS = ("noise", "haze", "rain", "lowlight", "underwater")
#: PromptIR/AdaIR repeat factors per epoch (noise: per σ).
PROMPTIR_REPEATS = {"noise": 3, "rain": 120, "haze": 1, "blur": 5, "lowlight": 20}


# ------------------------------------------------------------------------------ task specs
@dataclasses.dataclass(frozen=True)
class ParamDegradation:
    """A registered degradation whose parameters are partly fixed or drawn from ranges.

    ``params``: ``{field: value}`` or ``{field: [lo, hi]}`` (uniform); other fields come from the
    degradation's own ``sample(severity)``. Picklable (DataLoader workers).
    """

    name: str
    params: tuple[tuple[str, Any], ...] = ()

    def __call__(self, severity: float, generator: torch.Generator) -> Any:
        base = degradation_class(self.name).sample(severity, generator)
        values = {}
        for key, value in self.params:
            if isinstance(value, (list, tuple)):
                lo, hi = (float(v) for v in value)
                values[key] = uniform(generator, lo, hi)
            else:
                values[key] = value
        return dataclasses.replace(base, **values)


def parse_task_specs(tasks: Any, where: str = "data.tasks") -> dict[str, TaskSpec]:
    """YAML task spec → ``{task: TaskSpec}``.

    Accepts a list of task names, or a mapping ``task → null | {degradations: [...],
    severity: ...}``; a degradation is a registered name or ``{name: …, field: value | [lo,
    hi]}`` (e.g. ``{name: gaussian_noise, sigma: [0, 50]}``).
    """
    if tasks is None:
        raise ConfigError(f"{where}: no tasks given")
    if isinstance(tasks, str) or not isinstance(tasks, (Sequence, Mapping)):
        raise ConfigError(f"{where}: expected a list of task names or a mapping")
    items = tasks.items() if isinstance(tasks, Mapping) else [(t, None) for t in tasks]
    specs: dict[str, TaskSpec] = {}
    for name, spec in items:
        spec = spec or {}
        if not isinstance(spec, Mapping):
            raise ConfigError(f"{where}.{name}: expected a mapping (degradations, severity)")
        unknown = set(spec) - {"degradations", "severity"}
        if unknown:
            raise ConfigError(f"{where}.{name}: unknown key '{sorted(unknown)[0]}'")
        degs: list[Any] = []
        for d in spec.get("degradations") or []:
            if isinstance(d, str):
                degs.append(d)
            elif isinstance(d, Mapping) and "name" in d:
                try:
                    fields = {f.name for f in dataclasses.fields(degradation_class(d["name"]))}
                except KeyError as exc:
                    raise ConfigError(f"{where}.{name}: {exc.args[0]}") from None
                params = {k: v for k, v in d.items() if k != "name"}
                bad = set(params) - fields
                if bad:
                    raise ConfigError(
                        f"{where}.{name}: {d['name']} has no parameter '{sorted(bad)[0]}'"
                    )
                degs.append(ParamDegradation(d["name"], tuple(sorted(params.items()))))
            else:
                raise ConfigError(f"{where}.{name}: bad degradation entry {d!r}")
        severity = spec.get("severity")
        if isinstance(severity, list):
            severity = tuple(severity)
        specs[str(name)] = TaskSpec(tuple(degs), severity)
    return specs


# ------------------------------------------------------------------------------ datasets
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

    def __init__(self, parts: Sequence[tuple[Dataset, int, str]]) -> None:
        self.parts = list(parts)
        self.offsets = [0]
        for ds, _, _ in self.parts:
            self.offsets.append(self.offsets[-1] + len(ds))  # type: ignore[arg-type]

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
        import bisect

        i = bisect.bisect_right(self.offsets, index) - 1
        ds, tid, task = self.parts[i]
        item = dict(ds[index - self.offsets[i]])
        item["task_id"], item["task"] = tid, task
        return item


class _EpochIndexed(Dataset):
    """Takes ``(epoch, index)`` keys: selects the epoch, then returns ``base[index]`` + index."""

    def __init__(self, base: Dataset) -> None:
        self.base = base

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> dict[str, Any]:
        epoch, index = key
        if hasattr(self.base, "set_epoch"):
            self.base.set_epoch(epoch)
        item = dict(self.base[index])
        item["index"] = index
        return item


class EpochBatchSampler:
    """Wraps a :class:`TaskBalancedBatchSampler`: yields ``[(epoch, index), …]`` batches."""

    def __init__(self, sampler: TaskBalancedBatchSampler) -> None:
        self.sampler = sampler

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for batch in self.sampler:
            yield [(self.sampler.epoch, i) for i in batch]

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def state_dict(self, batches_done: int | None = None) -> dict[str, Any]:
        return self.sampler.state_dict(batches_done)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.sampler.load_state_dict(state)


def _holdout(names: Sequence[str], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Split item positions into (train, val) by a hash of the names (order-independent)."""
    ranked = sorted(
        range(len(names)), key=lambda i: (seed_from_name(f"holdout/{names[i]}", seed), names[i])
    )
    n_val = max(1, round(fraction * len(names))) if len(names) > 1 else 0
    val = sorted(ranked[:n_val])
    return sorted(ranked[n_val:]), val


def _clean_photo_splits(root: Path) -> tuple[list[Path], list[Path]]:
    from aioir.data import load_corpus
    from aioir.io import list_images

    if (root / "SOURCES.tsv").is_file():
        corpus = load_corpus(root)
        return corpus.split("train"), corpus.split("val")
    if (root / "train").is_dir() and (root / "val").is_dir():
        return list_images(root / "train"), list_images(root / "val")
    raise DatasetLayoutError(
        f"{root}: neither a photo corpus (SOURCES.tsv; build one with `aioir data photos`) nor "
        "a folder with train/ and val/ sub-folders of clean photos"
    )


@functools.cache
def _fixed_sigma(sigma: float) -> ParamDegradation:
    return ParamDegradation("gaussian_noise", (("sigma", float(sigma)),))


# ------------------------------------------------------------------------------ data module
class RestorationDataModule(pl.LightningDataModule):
    """Builds the datasets of a :class:`DataConfig` (see the module docstring)."""

    def __init__(self, config: DataConfig, root: Path, seed: int = 0) -> None:
        super().__init__()
        self.config, self.root, self.seed = config, Path(root), int(seed)
        if not self.root.is_dir():
            raise DatasetLayoutError(f"{self.root}: data folder does not exist (data.root)")
        self.task_names = self._task_names()
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.batch_sampler: EpochBatchSampler | None = None
        self._pending_state: dict[str, Any] | None = None
        self._holdout_train: dict[str, Any] = {}

    # -------------------------------------------------------------- task lists
    def _task_names(self) -> list[str]:
        c = self.config
        if c.kind == "synthetic":
            return list(parse_task_specs(c.tasks))
        if c.kind == "udair":
            names = list(UDAIR_TASKS)
        else:
            names = ["noise", "rain", "haze"] + (
                ["blur", "lowlight"] if c.kind == "promptir-5task" else []
            )
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

    def _synthetic(self) -> tuple[Dataset, Dataset]:
        c = self.config
        train, val = _clean_photo_splits(self.root)
        if not train or not val:
            raise DatasetLayoutError(f"{self.root}: the train and val splits must both hold photos")
        specs = parse_task_specs(c.tasks)
        self._bank_images = train
        self._specs = specs
        tr = SyntheticDegradationDataset(
            train, specs, c.patch_size, c.severity, self.seed, False,
            length=c.items_per_task, augment=c.augment, photometric=c.photometric,
            white_balance=c.white_balance,
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
        tr_idx, va_idx = _holdout(names, c.val_fraction, c.val_seed)
        self._holdout_train[task] = (ds, tr_idx)
        tr = PairedPatchDataset(
            ds, tr_idx, tid, task, c.patch_size, "random", c.augment, self.seed, repeats
        )
        va = PairedPatchDataset(ds, va_idx, tid, task, c.val_size, c.val_mode, "none", c.val_seed)
        return tr, va

    def _udair(self) -> tuple[Dataset, Dataset]:
        from aioir.data import get_layout

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

    def _promptir(self) -> tuple[Dataset, Dataset]:
        from aioir.data import get_layout
        from aioir.io import list_images

        c = self.config
        layout = get_layout(c.kind)
        paired = {ds.task: ds for ds in layout.paired_datasets(self.root, "train").values()}
        repeats = {**PROMPTIR_REPEATS, **c.repeats}
        tr_parts, va_parts = [], []
        for tid, task in enumerate(self.task_names):
            if task == "noise":
                clean = list_images(self.root / "Train/Denoise", recursive=True)
                if not clean:
                    raise DatasetLayoutError(f"{self.root / 'Train/Denoise'}: no clean images")
                tr_idx, va_idx = _holdout([p.name for p in clean], c.val_fraction, c.val_seed)
                spec = {"noise": TaskSpec(tuple(_fixed_sigma(s) for s in c.noise_sigmas))}
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
            indices = self.train_set.task_indices  # type: ignore[attr-defined]
            m = c.samples_per_task
        else:
            indices = {0: list(range(len(self.train_set)))}  # type: ignore[arg-type]
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
            _EpochIndexed(self.train_set),
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
        shard = Subset(self.val_set, list(range(rank, len(self.val_set), world)))  # type: ignore[arg-type]
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
            length=items_per_task, augment="none", photometric=c.photometric,
            white_balance=c.white_balance,
        )  # fmt: skip

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
                if task == "noise" and c.kind != "udair":
                    images, spec = held
                    part: Dataset = SyntheticDegradationDataset(
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
            "train_items": len(self.train_set) if self.train_set is not None else None,  # type: ignore[arg-type]
            "val_items": len(self.val_set) if self.val_set is not None else None,  # type: ignore[arg-type]
            "sampler": c.sampler,
            "batch_size": self.train_batch_size,
        }
        if c.kind == "synthetic":
            out["severity"] = c.severity
        return out
