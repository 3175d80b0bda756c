"""UDAIR's source bank as a model artefact: per-task reference embeddings and their file format.

``bank[level]`` is a ``T×C×h×w`` tensor (``level`` ∈ ``g4``, ``g3``, ``g2``; ``T`` tasks in
``task_names`` order): the reference statistics of CORAL test-time adaptation (methods.md §2.8,
§2.10). The bank travels with the weights (``bank.safetensors`` next to ``model.safetensors``),
so restoring and adapting need nothing from the training engine, which computes it
(:mod:`aioir.engine.source_bank`).

File format: a safetensors file with tensors ``g4``, ``g3``, ``g2`` and header metadata
``aioir_source_bank`` = JSON ``{"task_names", "mode", "patch_size", "count", …}``; readable with
``safetensors`` alone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor

from aioir.errors import CheckpointError, ConfigError

__all__ = ["BANK_FILE", "LEVELS", "SourceBank", "load_source_bank", "save_source_bank"]

LEVELS = ("g4", "g3", "g2")
BANK_FILE = "bank.safetensors"


@dataclass
class SourceBank:
    """Per-task reference embeddings (``levels[g] = T×C×h×w``) with their task names."""

    levels: dict[str, Tensor]
    task_names: list[str]
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path) -> SourceBank:
        """Read a bank file (or the ``bank.safetensors`` inside a directory)."""
        levels, meta = load_source_bank(path)
        return cls(levels, list(meta.get("task_names", [])), meta)

    def save(self, path: str | Path) -> Path:
        """Write the bank (see the module docstring for the format)."""
        extra = {k: v for k, v in self.metadata.items() if k != "task_names"}
        return save_source_bank(path, self.levels, self.task_names, extra)

    def task_index(self, task: str) -> int:
        """Row of ``task`` in the bank (``ConfigError`` naming the known tasks otherwise)."""
        try:
            return self.task_names.index(task)
        except ValueError:
            raise ConfigError(
                f"source bank has no task {task!r} (tasks: {', '.join(self.task_names)})"
            ) from None


def save_source_bank(
    path: str | Path,
    bank: Mapping[str, Tensor],
    task_names: Sequence[str],
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``bank`` (``{g4, g3, g2}``, each ``T×C×h×w``) to a safetensors file (see above)."""
    from safetensors.torch import save_file

    tensors = {k: bank[k].detach().float().contiguous().cpu() for k in LEVELS}
    for k, v in tensors.items():
        if v.ndim != 4 or v.shape[0] != len(task_names):
            raise ConfigError(
                f"source bank {k}: expected {len(task_names)}×C×h×w, got {tuple(v.shape)}"
            )
    meta = {"task_names": list(task_names), **dict(metadata or {})}
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(p), metadata={"aioir_source_bank": json.dumps(meta, sort_keys=True)})
    return p


def load_source_bank(path: str | Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Read a bank file (or the ``bank.safetensors`` in a directory): ``(bank, metadata)``."""
    from safetensors import safe_open

    p = Path(path)
    if p.is_dir():
        p = p / BANK_FILE
    if not p.is_file():
        raise CheckpointError(f"{p}: no source bank file")
    try:
        with safe_open(str(p), framework="pt") as f:
            meta = json.loads((f.metadata() or {}).get("aioir_source_bank", "null"))
            bank = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    except (OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{p}: not a readable source bank ({exc})") from exc
    if meta is None or set(bank) != set(LEVELS):
        raise CheckpointError(f"{p}: not an aioir source bank (need g4, g3, g2 + metadata)")
    return bank, meta
