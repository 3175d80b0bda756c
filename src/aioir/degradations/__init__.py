"""Seeded, composable image degradations on batched tensors (and numpy arrays).

Each family lives in its own module and registers its degradations on import; this package
imports them all explicitly (no file-name scanning). See :mod:`aioir.degradations.base` for the
contract every degradation follows.
"""

from __future__ import annotations

from aioir.degradations import (  # noqa: F401  (registers the degradations)
    blur,
    haze,
    identity,
    jpeg,
    lowlight,
    noise,
    rain,
    underwater,
)
from aioir.degradations.base import (
    TASKS,
    TIERS,
    Degradation,
    available_degradations,
    degradation_class,
    make_generator,
    register_degradation,
    seed_from_name,
    severity_from_tier,
)
from aioir.degradations.compose import (
    Compose,
    CutMixResult,
    canonical_order,
    degradation_cutmix,
    random_degradation,
)

__all__ = [
    "TASKS",
    "TIERS",
    "Compose",
    "CutMixResult",
    "Degradation",
    "available_degradations",
    "canonical_order",
    "degradation_class",
    "degradation_cutmix",
    "make_generator",
    "random_degradation",
    "register_degradation",
    "seed_from_name",
    "severity_from_tier",
]
