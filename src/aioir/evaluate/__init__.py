"""Evaluation: named benchmarks, classical comparators, NIQE, and report tables.

* :mod:`~aioir.evaluate.benchmarks` — ``promptir-3task``, ``promptir-5task``, ``udair-source``,
  ``udair-target``, ``paired:DIR[:TASK]``, ``synthetic:DIR[:TASKS]``, ``photo-tasks:DIR[:COLUMNS]``
  (the per-task bar); seeded test degradations.
* :mod:`~aioir.evaluate.methods` — :func:`load_method`: networks (through
  :class:`aioir.restore.Restorer`) and ``classical:NAME`` comparators behind one interface.
* :mod:`~aioir.evaluate.classical` — CBM3D, dark channel prior, LIME, adaptive gamma, gray world,
  baselines.
* :mod:`~aioir.evaluate.niqe` — NIQE with a pristine model fitted on aioir's photo corpus.
* :mod:`~aioir.evaluate.runner` — :func:`evaluate`, the loop.
* :mod:`~aioir.evaluate.report` — markdown / JSON / CSV, with the protocol header on every table.

Names are imported lazily (``from aioir.evaluate import evaluate`` loads only what it needs).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aioir._lazy import lazy_attributes

_LAZY: dict[str, str] = {
    "BENCHMARKS": "aioir.evaluate.benchmarks",
    "get_benchmark": "aioir.evaluate.benchmarks",
    "list_benchmarks": "aioir.evaluate.benchmarks",
    "CLASSICAL_METHODS": "aioir.evaluate.classical",
    "load_method": "aioir.evaluate.methods",
    "niqe": "aioir.evaluate.niqe",
    "fit_niqe_model": "aioir.evaluate.niqe",
    "evaluate": "aioir.evaluate.runner",
    "evaluate_many": "aioir.evaluate.runner",
    "BenchmarkResult": "aioir.evaluate.report",
    "to_markdown": "aioir.evaluate.report",
    "comparison_markdown": "aioir.evaluate.report",
    "write_json": "aioir.evaluate.report",
    "write_csv": "aioir.evaluate.report",
}

__all__ = [
    "BENCHMARKS",
    "CLASSICAL_METHODS",
    "BenchmarkResult",
    "comparison_markdown",
    "evaluate",
    "evaluate_many",
    "fit_niqe_model",
    "get_benchmark",
    "list_benchmarks",
    "load_method",
    "niqe",
    "to_markdown",
    "write_csv",
    "write_json",
]


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)


if TYPE_CHECKING:  # pragma: no cover
    from aioir.evaluate.benchmarks import BENCHMARKS, get_benchmark, list_benchmarks
    from aioir.evaluate.classical import CLASSICAL_METHODS
    from aioir.evaluate.methods import load_method
    from aioir.evaluate.niqe import fit_niqe_model, niqe
    from aioir.evaluate.report import (
        BenchmarkResult,
        comparison_markdown,
        to_markdown,
        write_csv,
        write_json,
    )
    from aioir.evaluate.runner import evaluate, evaluate_many
