"""UDAIR's source bank: per-task mean degradation embeddings at the three fusion levels.

``bank[level]`` is a ``T×C×h×w`` tensor (``level`` ∈ ``g4``, ``g3``, ``g2``; ``T`` tasks in
``task_names`` order) — the reference statistics of CORAL test-time adaptation
(``docs/methods/udair.md``, "Source bank"). Two ways to compute it:

* ``epoch_mean`` (the authors): at every training step the detached ``g``'s of the
  task-ordered batch are reshaped to ``[T, M, C, h, w]``, averaged over ``M`` and summed; at
  each validation the sum is divided by the step count, kept if validation PSNR is a new best,
  and reset. The bank then mixes a changing model, with dropout on.
* ``final_pass`` (our default): one pass in eval mode over fixed training crops with the final
  (exported) weights — see :func:`compute_final_pass`; :func:`compute_source_bank` also
  accumulates the per-task row statistics of format 2 (:class:`RowStatisticsAccumulator`:
  mean, covariance and within-image covariance of the rows of each crop's map, pooled to the
  bank's ``h×w``).

The file format lives with the model (:mod:`aioir.methods.udair.bank`), so restoring and
test-time adaptation read the bank without importing the training engine.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from aioir.errors import CheckpointError, ConfigError
from aioir.methods.udair.bank import (
    BANK_FILE,
    LEVELS,
    SourceBank,
    load_source_bank,
    pooled_rows,
    save_source_bank,
)

__all__ = [
    "BANK_FILE",
    "LEVELS",
    "RowStatisticsAccumulator",
    "SourceBankAccumulator",
    "build_source_bank",
    "compute_final_pass",
    "compute_source_bank",
    "load_source_bank",
    "save_model_with_bank",
    "save_source_bank",
]


class SourceBankAccumulator:
    """Running per-task sums of ``g4/g3/g2`` (``epoch_mean``) or per-item sums (final pass).

    :meth:`add_task_ordered` takes a task-ordered batch (``T·M`` items, UDAIR's convention);
    :meth:`add_items` takes any batch with its task ids. :meth:`mean` gives the bank.
    """

    def __init__(self, task_names: Sequence[str]) -> None:
        if not task_names:
            raise ConfigError("source bank: need at least one task")
        self.task_names = list(task_names)
        self.sums: dict[str, Tensor] = {}
        self.counts = torch.zeros(len(self.task_names), dtype=torch.float64)

    def reset(self) -> None:
        """Forget everything accumulated."""
        self.sums = {}
        self.counts = torch.zeros(len(self.task_names), dtype=torch.float64)

    @property
    def empty(self) -> bool:
        return not self.sums or bool((self.counts == 0).all())

    def _add(self, level: str, value: Tensor) -> None:
        value = value.detach().double()
        if level in self.sums:
            self.sums[level] = self.sums[level].to(value.device) + value
        else:
            self.sums[level] = value

    @torch.no_grad()
    def add_task_ordered(self, g: Mapping[str, Tensor] | Sequence[Tensor]) -> None:
        """One step of a task-ordered batch: mean over ``M`` per task, added to the sums."""
        maps = _levels(g)
        t = len(self.task_names)
        for level, x in maps.items():
            if x.shape[0] % t:
                raise ConfigError(
                    f"source bank: batch of {x.shape[0]} is not task-ordered over {t} tasks"
                )
            self._add(level, x.reshape(t, x.shape[0] // t, *x.shape[1:]).mean(1))
        self.counts += 1

    @torch.no_grad()
    def add_items(self, g: Mapping[str, Tensor] | Sequence[Tensor], task_ids: Tensor) -> None:
        """Items with arbitrary task ids: per-item embeddings summed into their task."""
        maps = _levels(g)
        t = len(self.task_names)
        ids = task_ids.to(torch.int64).cpu()
        for level, x in maps.items():
            x = x.detach().double()
            acc = torch.zeros(t, *x.shape[1:], dtype=torch.float64, device=x.device)
            acc.index_add_(0, ids.to(x.device), x)
            self._add(level, acc)
        self.counts += torch.bincount(ids, minlength=t).double()

    def mean(self) -> dict[str, Tensor]:
        """``{level: T×C×h×w}`` float32 means (ConfigError if a task has no data)."""
        if self.empty:
            raise ConfigError("source bank: nothing accumulated")
        if bool((self.counts == 0).any()):
            missing = [n for n, c in zip(self.task_names, self.counts.tolist()) if c == 0]
            raise ConfigError(f"source bank: no data for task(s) {', '.join(missing)}")
        out = {}
        for level, s in self.sums.items():
            shape = (-1,) + (1,) * (s.ndim - 1)
            out[level] = (s / self.counts.to(s.device).view(shape)).float().cpu()
        return out

    def state_dict(self) -> dict[str, Any]:
        return {
            "task_names": list(self.task_names),
            "sums": {k: v.cpu() for k, v in self.sums.items()},
            "counts": self.counts.clone(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if list(state["task_names"]) != self.task_names:
            raise CheckpointError(
                f"source bank tasks {list(state['task_names'])} differ from {self.task_names}"
            )
        self.sums = {k: v.clone() for k, v in state["sums"].items()}
        self.counts = state["counts"].clone().double()


def _levels(g: Mapping[str, Tensor] | Sequence[Tensor]) -> dict[str, Tensor]:
    if isinstance(g, Mapping):
        return {k: g[k] for k in LEVELS}
    if len(g) != len(LEVELS):
        raise ValueError(f"expected (g4, g3, g2), got {len(g)} tensors")
    return dict(zip(LEVELS, g, strict=True))


class RowStatisticsAccumulator:
    """Per-task float64 sums over the rows of per-image maps (format-2 bank statistics).

    Every item's ``C×H×W`` map is average-pooled to the bank's ``h×w`` (``sizes``, as TTA pools
    a target map, :func:`aioir.methods.udair.bank.pooled_rows`) and its ``n = h·w`` rows are
    added to its task: row count, ``Σx`` (C), ``Σxxᵀ`` (C×C), the item's own scatter
    ``XᵢᵀXᵢ − sᵢsᵢᵀ/nᵢ`` (C×C) and the image count. Sums are exact to float64 rounding and
    mergeable (:meth:`merge`, e.g. across DDP ranks or batches); :meth:`result` gives
    ``{"mean": T×C, "cov": T×C×C, "within": T×C×C}`` per level with the unbiased convention of
    :func:`aioir.losses.coral.covariance`: ``cov = (Σxxᵀ − ssᵀ/n)/(n − 1)`` over all rows of the
    task, ``within = Σᵢ scatterᵢ / Σᵢ(nᵢ − 1)`` (the mean per-image covariance).
    """

    _FIELDS = ("rows", "sum", "outer", "scatter", "images")

    def __init__(
        self, task_names: Sequence[str], sizes: Mapping[str, tuple[int, int]] | None = None
    ) -> None:
        if not task_names:
            raise ConfigError("source bank: need at least one task")
        self.task_names = list(task_names)
        self.sizes = dict(sizes or {})
        self.sums: dict[str, dict[str, Tensor]] = {}

    @property
    def empty(self) -> bool:
        return not self.sums

    def _level(self, level: str, channels: int) -> dict[str, Tensor]:
        if level not in self.sums:
            t = len(self.task_names)
            f64 = torch.float64
            self.sums[level] = {
                "rows": torch.zeros(t, dtype=f64),
                "sum": torch.zeros(t, channels, dtype=f64),
                "outer": torch.zeros(t, channels, channels, dtype=f64),
                "scatter": torch.zeros(t, channels, channels, dtype=f64),
                "images": torch.zeros(t, dtype=f64),
            }
        return self.sums[level]

    @torch.no_grad()
    def add_items(self, g: Mapping[str, Tensor] | Sequence[Tensor], task_ids: Tensor) -> None:
        """Per-item maps (``B×C×H×W`` per level) with their task ids (``B``)."""
        maps = _levels(g)
        ids = torch.as_tensor(task_ids).to(torch.int64).cpu()
        t = len(self.task_names)
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= t):
            raise ConfigError(f"source bank: task id out of range for {t} tasks")
        for level, x in maps.items():
            size = self.sizes.setdefault(level, (int(x.shape[-2]), int(x.shape[-1])))
            rows = pooled_rows(x.detach().double(), size).cpu()  # B×n×C
            b, n, c = rows.shape
            acc = self._level(level, c)
            s = rows.sum(1)  # B×C
            outer = torch.einsum("bnc,bnd->bcd", rows, rows)
            scatter = outer - s[:, :, None] * s[:, None, :] / n
            acc["rows"].index_add_(0, ids, torch.full((b,), float(n), dtype=torch.float64))
            acc["sum"].index_add_(0, ids, s)
            acc["outer"].index_add_(0, ids, outer)
            acc["scatter"].index_add_(0, ids, scatter)
            acc["images"].index_add_(0, ids, torch.ones(b, dtype=torch.float64))

    def merge(self, other: RowStatisticsAccumulator) -> None:
        """Add another accumulator's sums (same tasks and pooled sizes)."""
        if other.task_names != self.task_names:
            raise ConfigError(f"source bank tasks {other.task_names} differ from {self.task_names}")
        for level, acc in other.sums.items():
            if (
                level in self.sizes
                and level in other.sizes
                and (self.sizes[level] != other.sizes[level])
            ):
                raise ConfigError(f"source bank {level}: pooled sizes differ")
            self.sizes.setdefault(level, other.sizes[level])
            mine = self._level(level, acc["sum"].shape[1])
            for key in self._FIELDS:
                mine[key] += acc[key]

    def result(self) -> dict[str, dict[str, Tensor]]:
        """``{"mean"|"cov"|"within": {level: float32 tensor}}`` (ConfigError for a task with
        no data or fewer than two rows)."""
        if self.empty:
            raise ConfigError("source bank statistics: nothing accumulated")
        out: dict[str, dict[str, Tensor]] = {"mean": {}, "cov": {}, "within": {}}
        for level in LEVELS:
            acc = self.sums[level]
            n, images = acc["rows"], acc["images"]
            if bool((n < 2).any()):  # also every task without images (n = 0)
                missing = [name for name, c in zip(self.task_names, n.tolist()) if c < 2]
                raise ConfigError(
                    f"source bank statistics: fewer than two rows for task(s) "
                    f"{', '.join(missing)} (no data, or {level} maps of one position)"
                )
            s = acc["sum"]
            mean = s / n[:, None]
            cov = (acc["outer"] - s[:, :, None] * s[:, None, :] / n[:, None, None]) / (
                n[:, None, None] - 1
            )
            dof = (n - images).clamp_min(1.0)
            out["mean"][level] = mean.float()
            out["cov"][level] = cov.float()
            out["within"][level] = (acc["scatter"] / dof[:, None, None]).float()
        return out

    def counts(self) -> dict[str, Any]:
        """Rows and images per task (of the first level; equal images at every level)."""
        first = self.sums[LEVELS[0]]
        return {
            "rows": {lv: [int(v) for v in self.sums[lv]["rows"].tolist()] for lv in LEVELS},
            "images": [int(v) for v in first["images"].tolist()],
        }

    def state_dict(self) -> dict[str, Any]:
        return {
            "task_names": list(self.task_names),
            "sizes": dict(self.sizes),
            "sums": {lv: {k: v.clone() for k, v in acc.items()} for lv, acc in self.sums.items()},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if list(state["task_names"]) != self.task_names:
            raise CheckpointError(
                f"source bank tasks {list(state['task_names'])} differ from {self.task_names}"
            )
        self.sizes = {k: tuple(v) for k, v in state["sizes"].items()}
        self.sums = {
            lv: {k: v.clone().double() for k, v in acc.items()} for lv, acc in state["sums"].items()
        }


def _final_pass(
    model: nn.Module,
    batches: Iterable[Mapping[str, Any]],
    task_names: Sequence[str],
    statistics: bool,
) -> tuple[SourceBankAccumulator, RowStatisticsAccumulator | None]:
    forward_features = getattr(model, "forward_features", None)
    if forward_features is None:
        raise ConfigError(f"{type(model).__name__} has no forward_features: no source bank")
    acc = SourceBankAccumulator(task_names)
    stats = RowStatisticsAccumulator(task_names) if statistics else None
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        for batch in batches:
            out = forward_features(batch["input"].to(device), decode=False)
            ids = torch.as_tensor(batch["task_id"])
            maps = (out.g4, out.g3, out.g2)
            acc.add_items(maps, ids)
            if stats is not None:
                stats.add_items(maps, ids)
    finally:
        model.train(was_training)
    return acc, stats


@torch.no_grad()
def compute_final_pass(
    model: nn.Module, batches: Iterable[Mapping[str, Any]], task_names: Sequence[str]
) -> tuple[dict[str, Tensor], Tensor]:
    """The bank's mean maps from one eval-mode pass: per-task mean of ``g4/g3/g2``.

    ``batches`` yield ``{"input": B×3×H×W, "task_id": B}`` (fixed crops of the training set).
    Returns ``(bank, counts)``. The model's train/eval mode is restored afterwards.
    :func:`compute_source_bank` also gives the row statistics.
    """
    acc, _ = _final_pass(model, batches, task_names, statistics=False)
    return acc.mean(), acc.counts.clone()


@torch.no_grad()
def compute_source_bank(
    model: nn.Module,
    batches: Iterable[Mapping[str, Any]],
    task_names: Sequence[str],
    *,
    statistics: bool = True,
    metadata: Mapping[str, Any] | None = None,
) -> SourceBank:
    """A complete final-pass :class:`~aioir.models.SourceBank`: mean maps and (by default) the
    per-task row statistics, from one eval-mode pass over ``batches`` (as
    :func:`compute_final_pass`). ``metadata`` is added to ``{"mode": "final_pass", "count",
    "statistics": {"rows", "images"}}``; the caller adds ``patch_size``."""
    acc, stats = _final_pass(model, batches, task_names, statistics)
    meta: dict[str, Any] = {
        "mode": "final_pass",
        "count": [int(c) for c in acc.counts.tolist()],
    }
    bank = SourceBank(acc.mean(), list(task_names), meta)
    if stats is not None:
        result = stats.result()
        bank.means, bank.covs, bank.within = result["mean"], result["cov"], result["within"]
        meta["statistics"] = stats.counts()
    meta.update(dict(metadata or {}))
    return bank


def build_source_bank(
    model: nn.Module,
    config: Any,
    *,
    items_per_task: int | None = None,
    patch_size: int | None = None,
    batch_size: int | None = None,
    statistics: bool = True,
    expected_tasks: Sequence[str] | None = None,
) -> SourceBank:
    """(Re)build the final-pass bank of a trained ``model`` from a training ``config``
    (:class:`~aioir.engine.config.TrainConfig`): the crops :func:`aioir.engine.run.export_run`
    uses at the end of training (``RestorationDataModule.bank_dataloader`` seeded by
    ``trainer.seed``), ``items_per_task``/``patch_size``/``batch_size`` defaulting to the
    config's ``source_bank`` section (patch: ``source_bank.patch_size`` or
    ``data.patch_size``). ``expected_tasks`` (the model's recorded task names) must equal the
    config's tasks, in order. The model's device is used; it is left in eval mode."""
    from aioir.engine.datamodule import RestorationDataModule

    sb = config.extras["source_bank"]
    items = int(items_per_task or sb.items_per_task)
    patch = int(patch_size or sb.patch_size or config.data.patch_size)
    batch = int(batch_size or sb.batch_size)
    if items < 1 or patch < 8 or batch < 1:
        raise ConfigError("source bank: items per task and batch size must be >= 1, patch >= 8")
    dm = RestorationDataModule(config.data, config.data_root(), seed=config.trainer.seed)
    if expected_tasks is not None and list(expected_tasks) != list(dm.task_names):
        raise ConfigError(
            f"the config's tasks ({', '.join(dm.task_names)}) differ from the model's "
            f"({', '.join(expected_tasks)})"
        )
    loader = dm.bank_dataloader(items, patch, batch)
    bank = compute_source_bank(
        model, loader, dm.task_names, statistics=statistics, metadata={"patch_size": patch}
    )
    model.eval()
    return bank


def save_model_with_bank(
    model: nn.Module,
    source: str | Path,
    bank: SourceBank,
    output: str | Path,
    *,
    dtype: str = "float32",
    overwrite: bool = False,
) -> Path:
    """Write ``model`` — loaded from the saved-model folder ``source`` — to ``output`` with
    ``bank`` as its source bank (stored as ``dtype``; ``config.json`` naming it and its tasks),
    the other files of ``source`` (model card, training record) copied. ``output`` may be
    ``source`` itself (``aioir bank --in-place``). Written through
    :func:`aioir.models.save_model`: the folder is replaced whole or not at all."""
    from aioir.models import save_model, unwrap
    from aioir.models.checkpoints import CONFIG_NAME, WEIGHTS_NAME

    folder = Path(source)
    if not folder.is_dir():
        raise ConfigError(f"{folder}: not a saved-model folder")
    bank.metadata["dtype"] = dtype
    unwrap(model).source_bank = bank
    metadata = dict(getattr(model, "aioir_metadata", {}) or {})
    metadata["task_names"] = list(bank.task_names)
    keep = {WEIGHTS_NAME, CONFIG_NAME, BANK_FILE}
    files = {p.name: p for p in sorted(folder.iterdir()) if p.is_file() and p.name not in keep}
    return save_model(model, output, metadata=metadata, files=files, overwrite=overwrite)
