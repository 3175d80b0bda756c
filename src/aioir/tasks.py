"""The restoration task names: one definition for every layer (pure Python, no torch).

A task is a family of degradations a model learns to undo. The degradation registry
(:mod:`aioir.degradations`), dataset layouts, benchmarks, the demo and the command line all name
tasks with these strings, in this order.
"""

from __future__ import annotations

__all__ = ["CORE_TASKS", "TASKS"]

#: The six degradation tasks aioir restores by default (the demo's and ``synthetic:DIR``'s
#: columns), in canonical order.
CORE_TASKS: tuple[str, ...] = ("noise", "rain", "haze", "lowlight", "blur", "underwater")

#: The restoration tasks aioir knows, in its canonical order. ``clean`` is the identity "task":
#: clean inputs a blind model must leave alone (training samples and a "do no harm" benchmark).
TASKS: tuple[str, ...] = (*CORE_TASKS, "jpeg", "clean")
