"""UDAIR's source bank as a model artefact: per-task reference embeddings and their file format.

``bank.levels[level]`` is a ``T×C×h×w`` *mean map* (``level`` ∈ ``g4``, ``g3``, ``g2``; ``T``
tasks in ``task_names`` order): the average of the degradation embeddings over training crops,
the authors' reference for CORAL test-time adaptation (``docs/methods/udair.md``, "Source
bank", "CORAL test-time adaptation"). Format 2 adds
per-task *distribution statistics* of the rows (positions) of the per-image maps, accumulated
over the same crops (:mod:`aioir.methods.udair.bank_accumulation`):

* ``bank.means[level]`` — ``T×C``: mean feature of the rows of every crop of the task;
* ``bank.covs[level]`` — ``T×C×C``: unbiased covariance of all those rows stacked
  (``(XᵀX − ssᵀ/n)/(n − 1)``, :func:`aioir.losses.coral.covariance`'s convention);
* ``bank.within[level]`` — ``T×C×C``: the *within-image* covariance, i.e. the mean over crops
  of each crop's own unbiased row covariance (pooled: ``Σᵢ(XᵢᵀXᵢ − sᵢsᵢᵀ/nᵢ) / Σᵢ(nᵢ − 1)``) —
  the expected value of what CORAL computes for one training image.

The bank travels with the weights (``bank.safetensors`` next to ``model.safetensors``), so
restoring and adapting need nothing from the training engine, which computes it.

File format: a safetensors file with tensors ``g4``, ``g3``, ``g2`` (mean maps) and, in format
2 when statistics were computed, ``mean_g4``, ``cov_g4``, ``within_g4`` … for every level;
header metadata ``aioir_source_bank`` = JSON ``{"format_version", "task_names", "mode",
"patch_size", "count", "dtype", "statistics": {"rows", "images"}, …}``; readable with
``safetensors`` alone. Files without ``format_version`` (mean maps only) are format 1 and load
with no statistics. Tensors may be stored as float16 (``dtype=``, halves the file); loading
always returns float32.

**The authors' file.** UDAIR's released code saves its bank as ``source_domain_distrib.pth``, a
torch pickle ``{"distrib_4", "distrib_3", "distrib_2"}`` of ``T×C×h×w`` mean maps (an epoch
mean over the training crops of the best epoch; ``T = 5`` tasks in their config order
denoising, dehazing, deraining, low-light, underwater; at their 128 px patch ``5×192×16×16``,
``5×96×32×32``, ``5×48×64×64``). :meth:`SourceBank.load` recognises it by its content (a
torch file, not safetensors) and reads it as a format-1 bank with aioir's task names
(:data:`AUTHORS_TASKS`); it is read with ``torch.load(weights_only=True)`` (tensors only, no
code runs).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from aioir.errors import CheckpointError, ConfigError

__all__ = [
    "AUTHORS_KEYS",
    "AUTHORS_TASKS",
    "BANK_DTYPES",
    "BANK_FILE",
    "BANK_FORMAT_VERSION",
    "LEVELS",
    "STAT_KINDS",
    "SourceBank",
    "load_source_bank",
    "read_authors_bank",
    "save_source_bank",
]

LEVELS = ("g4", "g3", "g2")
BANK_FILE = "bank.safetensors"
#: 1: mean maps only (no version field); 2: + optional per-task row statistics, dtype field.
BANK_FORMAT_VERSION = 2
#: the statistics stored per level (tensor names ``<kind>_<level>``)
STAT_KINDS = ("mean", "cov", "within")
#: storage dtypes by name
BANK_DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "float16": torch.float16}
#: the authors' bank keys by level (``source_domain_distrib.pth``)
AUTHORS_KEYS: dict[str, str] = {"g4": "distrib_4", "g3": "distrib_3", "g2": "distrib_2"}
#: the authors' tasks in their config order (denoising, dehazing, deraining, low-light,
#: underwater), by aioir's names: the rows of their bank
AUTHORS_TASKS: tuple[str, ...] = ("noise", "haze", "rain", "lowlight", "underwater")


def pooled_size(shape: tuple[int, int], bank_hw: tuple[int, int]) -> tuple[int, int]:
    """Pooled size of a map of ``shape`` so its *short* side matches the bank's ``bank_hw``.

    A square map gives exactly ``bank_hw`` (the authors' pooling); other aspect ratios keep their
    aspect (the CORAL rows are positions, their number may differ from the bank's).
    """
    h, w = shape
    bh, bw = bank_hw
    if h == w:
        return bh, bw
    ratio = min(h, w) / min(bh, bw)
    return max(1, round(h / ratio)), max(1, round(w / ratio))


def pooled_rows(g: Tensor, bank_hw: tuple[int, int]) -> Tensor:
    """B×C×H×W maps → ``B×n×C`` rows (positions) of their average-pooled versions
    (:func:`pooled_size`; no pooling when the size already matches). Keeps the dtype of a
    float64 input, float32 otherwise."""
    import torch.nn.functional as F

    x = g if g.dtype == torch.float64 else g.float()
    size = pooled_size((x.shape[-2], x.shape[-1]), bank_hw)
    if tuple(x.shape[-2:]) != size:
        x = F.adaptive_avg_pool2d(x, size)
    return x.flatten(2).transpose(1, 2)


@dataclass
class SourceBank:
    """Per-task reference embeddings (``levels[g] = T×C×h×w``) with their task names, and —
    format 2 — per-task row statistics (``means[g] = T×C``, ``covs``/``within[g] = T×C×C``),
    ``None`` for banks written without them (see the module docstring)."""

    levels: dict[str, Tensor]
    task_names: list[str]
    metadata: dict[str, Any] = field(default_factory=dict)
    means: dict[str, Tensor] | None = None
    covs: dict[str, Tensor] | None = None
    within: dict[str, Tensor] | None = None

    @property
    def has_statistics(self) -> bool:
        """Whether the per-task row statistics are present (format 2 with statistics)."""
        return self.means is not None and self.covs is not None and self.within is not None

    def statistics(self) -> dict[str, dict[str, Tensor]] | None:
        """``{"mean": {level: …}, "cov": …, "within": …}`` or ``None``."""
        if self.means is None or self.covs is None or self.within is None:
            return None
        return {"mean": self.means, "cov": self.covs, "within": self.within}

    @classmethod
    def load(cls, path: str | Path, task_names: Sequence[str] | None = None) -> SourceBank:
        """Read a bank file (or the ``bank.safetensors`` inside a directory): aioir's
        safetensors format or the authors' ``source_domain_distrib.pth`` (recognised by its
        content; ``task_names`` names its rows, default :data:`AUTHORS_TASKS`).
        :class:`~aioir.errors.CheckpointError` for anything else."""
        p = Path(path)
        if p.is_file() and _is_torch_file(p):
            return read_authors_bank(p, task_names)
        levels, meta, stats = _read(path)
        bank = cls(levels, list(meta.get("task_names", [])), meta)
        if stats is not None:
            bank.means, bank.covs, bank.within = stats["mean"], stats["cov"], stats["within"]
        return bank

    def save(
        self,
        path: str | Path,
        *,
        dtype: str | torch.dtype | None = None,
        overwrite: bool = True,
    ) -> Path:
        """Write the bank (see the module docstring for the format). ``dtype`` of the stored
        tensors: ``"float32"`` or ``"float16"``; ``None`` keeps the dtype the bank was read
        with (``metadata["dtype"]``), float32 for a new bank."""
        if dtype is None:
            dtype = str(self.metadata.get("dtype", "float32"))
        extra = {
            k: v
            for k, v in self.metadata.items()
            if k not in ("task_names", "format_version", "dtype")
        }
        return save_source_bank(
            path,
            self.levels,
            self.task_names,
            extra,
            statistics=self.statistics(),
            dtype=dtype,
            overwrite=overwrite,
        )

    def task_index(self, task: str) -> int:
        """Row of ``task`` in the bank, by aioir's name or another spelling
        (:func:`aioir.tasks.canonical_task`: ``dehazing`` is ``haze``); ``ConfigError`` naming
        the known tasks otherwise."""
        from aioir.tasks import canonical_task

        wanted = canonical_task(task)
        for i, name in enumerate(self.task_names):
            if canonical_task(name) == wanted:
                return i
        raise ConfigError(f"source bank has no task {task!r} (tasks: {', '.join(self.task_names)})")

    def check_channels(self, channels: Mapping[str, int], where: str = "source bank") -> None:
        """``CheckpointError`` unless every level has the given channel count (the model's
        adapters': ``{"g4": 192, "g3": 96, "g2": 48}`` for the paper preset)."""
        for level in LEVELS:
            got = int(self.levels[level].shape[1])
            if level in channels and got != int(channels[level]):
                raise CheckpointError(
                    f"{where}: {level} has {got} channels, the model's {channels[level]} "
                    "(a bank of another model size)"
                )


def _dtype(dtype: str | torch.dtype) -> tuple[str, torch.dtype]:
    if isinstance(dtype, torch.dtype):
        for name, value in BANK_DTYPES.items():
            if value == dtype:
                return name, value
    elif dtype in BANK_DTYPES:
        return str(dtype), BANK_DTYPES[dtype]
    raise ConfigError(f"source bank dtype must be float32 or float16, not {dtype}")


def _check_statistics(
    statistics: Mapping[str, Mapping[str, Tensor]], maps: Mapping[str, Tensor], n_tasks: int
) -> None:
    for kind in STAT_KINDS:
        if kind not in statistics:
            raise ConfigError(f"source bank statistics: missing {kind!r}")
        for level in LEVELS:
            channels = maps[level].shape[1]
            want = (n_tasks, channels) if kind == "mean" else (n_tasks, channels, channels)
            got = tuple(statistics[kind][level].shape)
            if got != want:
                raise ConfigError(f"source bank {kind}_{level}: expected {want}, got {got}")


def save_source_bank(
    path: str | Path,
    bank: Mapping[str, Tensor],
    task_names: Sequence[str],
    metadata: Mapping[str, Any] | None = None,
    *,
    statistics: Mapping[str, Mapping[str, Tensor]] | None = None,
    dtype: str | torch.dtype = "float32",
    overwrite: bool = True,
) -> Path:
    """Write ``bank`` (``{g4, g3, g2}``, each ``T×C×h×w``) and, when given, ``statistics``
    (``{"mean": {level: T×C}, "cov": {level: T×C×C}, "within": …}``) to a safetensors file.

    ``dtype`` is the storage type of every tensor (``"float32"`` or ``"float16"``: half the
    size; loading returns float32). The write is atomic (temporary file + rename) with the usual
    file permissions; ``overwrite=False`` refuses an existing file.
    """
    from safetensors.torch import save

    from aioir.io import write_bytes_atomically

    name, store = _dtype(dtype)
    maps = {k: bank[k].detach().float().cpu() for k in LEVELS}
    for k, v in maps.items():
        if v.ndim != 4 or v.shape[0] != len(task_names):
            raise ConfigError(
                f"source bank {k}: expected {len(task_names)}×C×h×w, got {tuple(v.shape)}"
            )
    tensors = dict(maps)
    if statistics is not None:
        _check_statistics(statistics, maps, len(task_names))
        for kind in STAT_KINDS:
            for level in LEVELS:
                tensors[f"{kind}_{level}"] = statistics[kind][level].detach().float().cpu()
    if store == torch.float16:
        big = max(float(v.abs().max()) for v in tensors.values())
        if big > float(torch.finfo(torch.float16).max):
            raise ConfigError(f"source bank values up to {big:.3g} do not fit in float16")
    tensors = {k: v.to(store).contiguous() for k, v in tensors.items()}
    meta = {
        "task_names": list(task_names),
        **dict(metadata or {}),
        "format_version": BANK_FORMAT_VERSION,
        "dtype": name,
    }
    if statistics is None:
        meta.pop("statistics", None)  # a description of statistics that are not stored
    try:
        text = json.dumps(meta, sort_keys=True)
    except TypeError as exc:
        raise ConfigError(f"source bank metadata must be JSON-serialisable: {exc}") from exc
    payload = save(tensors, metadata={"aioir_source_bank": text})
    p = Path(path)
    write_bytes_atomically(p, payload, overwrite=overwrite)
    return p


def _read(
    path: str | Path,
) -> tuple[dict[str, Tensor], dict[str, Any], dict[str, dict[str, Tensor]] | None]:
    from safetensors import safe_open

    p = Path(path)
    if p.is_dir():
        p = p / BANK_FILE
    if not p.is_file():
        raise CheckpointError(f"{p}: no source bank file")
    try:
        with safe_open(str(p), framework="pt") as f:
            meta = json.loads((f.metadata() or {}).get("aioir_source_bank", "null"))
            tensors = {k: f.get_tensor(k).float() for k in f.keys()}  # noqa: SIM118
    except Exception as exc:  # SafetensorError, OSError, JSON errors …: one line
        raise CheckpointError(f"{p}: not a readable source bank ({_one_line(exc)})") from exc
    if not isinstance(meta, dict) or not set(LEVELS) <= set(tensors):
        raise CheckpointError(f"{p}: not an aioir source bank (need g4, g3, g2 + metadata)")
    version = meta.get("format_version", 1)
    if not isinstance(version, int) or version > BANK_FORMAT_VERSION:
        raise CheckpointError(
            f"{p}: source bank format {version!r} is newer than this aioir reads "
            f"({BANK_FORMAT_VERSION}); upgrade aioir"
        )
    stat_names = {f"{kind}_{level}" for kind in STAT_KINDS for level in LEVELS}
    unknown = set(tensors) - set(LEVELS) - stat_names
    present = set(tensors) & stat_names
    if unknown or (present and present != stat_names):
        extra = sorted(unknown) or sorted(stat_names - present)
        raise CheckpointError(f"{p}: malformed source bank (unexpected or missing {extra})")
    levels = {k: tensors[k] for k in LEVELS}
    stats = None
    if present:
        stats = {kind: {lv: tensors[f"{kind}_{lv}"] for lv in LEVELS} for kind in STAT_KINDS}
    return levels, meta, stats


def _is_torch_file(path: Path) -> bool:
    """Whether ``path`` starts like a torch file (a zip archive, or a legacy pickle) rather
    than a safetensors file (an 8-byte header length followed by ``{``)."""
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError:
        return False  # the safetensors reader reports it
    if len(head) == 9 and head[8:9] == b"{":
        return False
    return head.startswith(b"PK\x03\x04") or head.startswith(b"\x80")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return line if len(line) <= 160 else line[:157] + "..."


def read_authors_bank(path: str | Path, task_names: Sequence[str] | None = None) -> SourceBank:
    """The authors' ``source_domain_distrib.pth`` as a :class:`SourceBank` (module docstring).

    ``task_names``: the rows' tasks (default :data:`AUTHORS_TASKS`, their config order); any
    spelling :func:`aioir.tasks.canonical_task` knows. Read on the CPU with
    ``torch.load(weights_only=True)``. :class:`~aioir.errors.CheckpointError` (one line) when
    the file is not readable or not of that layout.
    """
    from aioir.tasks import canonical_task

    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{p}: no source bank file")
    try:
        data = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # a torch/pickle/zip error of any kind: one line
        raise CheckpointError(f"{p}: not a readable source bank ({_one_line(exc)})") from exc
    keys = sorted(AUTHORS_KEYS.values())
    if not isinstance(data, Mapping) or not set(keys) <= set(data):
        found = sorted(map(str, data)) if isinstance(data, Mapping) else type(data).__name__
        raise CheckpointError(f"{p}: not a UDAIR source bank (need {keys}, found {found})")
    names = [canonical_task(t) for t in (task_names or AUTHORS_TASKS)]
    levels: dict[str, Tensor] = {}
    for level, key in AUTHORS_KEYS.items():
        value = data[key]
        if not isinstance(value, Tensor) or not value.is_floating_point():
            raise CheckpointError(f"{p}: {key} is not a float tensor")
        if value.ndim == 3 and len(names) == 1:  # their .squeeze() drops a single task's row
            value = value[None]
        if value.ndim != 4 or value.shape[0] != len(names):
            raise CheckpointError(
                f"{p}: {key} has shape {tuple(value.shape)}, expected {len(names)}×C×h×w "
                f"(tasks {', '.join(names)})"
            )
        levels[level] = value.detach().float().contiguous()
    side = int(levels["g3"].shape[-1])
    meta: dict[str, Any] = {
        "task_names": names,
        "mode": "epoch_mean",
        "patch_size": 4 * side,
        "source": f"UDAIR authors' bank ({p.name})",
    }
    return SourceBank(levels, names, meta)


def load_source_bank(path: str | Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Read a bank file (or the ``bank.safetensors`` in a directory): ``(mean maps, metadata)``
    — float32 whatever the stored dtype; :meth:`SourceBank.load` also returns the statistics."""
    levels, meta, _ = _read(path)
    return levels, meta
