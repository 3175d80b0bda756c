"""The task names: one canonical order, and the degradation registry covers every task."""

from __future__ import annotations

from aioir.degradations import available_degradations, degradation_class
from aioir.tasks import CORE_TASKS, TASKS


def test_canonical_order() -> None:
    assert CORE_TASKS == ("noise", "rain", "haze", "lowlight", "blur", "underwater")
    assert TASKS == ("noise", "rain", "haze", "lowlight", "blur", "underwater", "jpeg", "clean")
    assert len(set(TASKS)) == len(TASKS)


def test_every_task_has_a_registered_degradation() -> None:
    assert {degradation_class(n).task for n in available_degradations()} == set(TASKS)
