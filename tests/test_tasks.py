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


def test_authors_task_names_are_aliases():
    from aioir.tasks import TASK_ALIASES, TASKS, canonical_task

    assert [canonical_task(t) for t in ("denoising", "dehazing", "deraining", "low-light")] == [
        "noise",
        "haze",
        "rain",
        "lowlight",
    ]
    assert canonical_task(" Underwater ") == "Underwater" and canonical_task("noise") == "noise"
    assert set(TASK_ALIASES.values()) <= set(TASKS)


def test_benchmark_specs_accept_the_authors_task_names(tmp_path):
    from aioir.evaluate.benchmarks import get_benchmark

    assert get_benchmark(f"synthetic:{tmp_path}:dehazing,low-light").tasks == ("haze", "lowlight")
    assert get_benchmark(f"paired:{tmp_path}:deraining").task == "rain"


def test_task_parts_splits_composites_into_aioir_names():
    from aioir.tasks import task_parts

    assert task_parts("haze") == ["haze"]
    assert task_parts("dehazing+low-light") == ["haze", "lowlight"]


def test_split_composite_keeps_the_parts_as_written():
    from aioir.data.synthetic import COMPOSITE_SEPARATOR as data_separator
    from aioir.tasks import COMPOSITE_SEPARATOR, split_composite

    assert split_composite("haze") == ["haze"]
    assert split_composite("dehazing+low-light") == ["dehazing", "low-light"]  # no aliases
    assert data_separator is COMPOSITE_SEPARATOR  # one separator for every layer
