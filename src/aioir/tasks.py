"""The restoration task names: one definition for every layer (pure Python, no torch).

A task is a family of degradations a model learns to undo. The degradation registry
(:mod:`aioir.degradations`), dataset layouts, benchmarks, the demo and the command line all name
tasks with these strings, in this order. Other spellings in use (UDAIR's authors name their
tasks ``denoising``, ``dehazing``, ``deraining``, ``low-light``, ``underwater``) are accepted
wherever a task is named: :func:`canonical_task` maps them to aioir's names.
"""

from __future__ import annotations

__all__ = [
    "COMPOSITE_SEPARATOR",
    "CORE_TASKS",
    "TASKS",
    "TASK_ALIASES",
    "canonical_task",
    "split_composite",
    "task_parts",
]

#: The six degradation tasks aioir restores by default (the demo's and ``synthetic:DIR``'s
#: columns), in canonical order.
CORE_TASKS: tuple[str, ...] = ("noise", "rain", "haze", "lowlight", "blur", "underwater")

#: The restoration tasks aioir knows, in its canonical order. ``clean`` is the identity "task":
#: clean inputs a blind model must leave alone (training samples and a "do no harm" benchmark).
TASKS: tuple[str, ...] = (*CORE_TASKS, "jpeg", "clean")

#: Other names of the tasks → aioir's name: UDAIR's authors' task names (their config and
#: folder names) and the verb forms of the other all-in-one papers.
TASK_ALIASES: dict[str, str] = {
    "denoising": "noise",
    "denoise": "noise",
    "dehazing": "haze",
    "dehaze": "haze",
    "deraining": "rain",
    "derain": "rain",
    "low-light": "lowlight",
    "low_light": "lowlight",
    "enhance": "lowlight",
    "deblurring": "blur",
    "deblur": "blur",
}


def canonical_task(name: str) -> str:
    """aioir's name of the task ``name`` (an alias of :data:`TASK_ALIASES` or the name itself,
    stripped; case is kept for names that are not aliases)."""
    text = name.strip()
    return TASK_ALIASES.get(text.lower(), text)


#: Joins the component tasks of a composite task name: ``haze+rain`` (both at once).
COMPOSITE_SEPARATOR = "+"


def split_composite(name: str) -> list[str]:
    """The parts of a composite task name ``a+b`` as written (a plain name gives itself)."""
    return name.split(COMPOSITE_SEPARATOR)


def task_parts(name: str) -> list[str]:
    """The tasks a composite name ``a+b`` holds, each by aioir's name (:func:`canonical_task`;
    a plain name gives itself)."""
    return [canonical_task(part) for part in split_composite(name)]
