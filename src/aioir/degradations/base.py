"""The contract every degradation follows: parameters, severity, seeding, tensor/numpy handling.

A degradation is a frozen dataclass of *parameters* (documented ranges in each subclass) with

* ``apply(images, generator)`` — a pure function of the batch ``B×3×H×W`` float tensor in [0, 1],
  its parameters and a ``torch.Generator`` (all randomness comes from the generator, so the same
  seed gives the same output on every machine; noise is drawn on the CPU generator and moved to
  the images' device);
* ``sample(severity, generator)`` — a classmethod that draws random parameters whose strength
  grows with ``severity`` in [0, 1]. The three tiers (mild / moderate / severe) are the thirds of
  that interval (:data:`TIERS`);
* ``__call__(image, seed=...)`` — convenience: accepts a tensor (``3×H×W`` or ``B×3×H×W``) or a
  numpy array (``H×W×3`` or ``B×H×W×3``), returns the same kind and shape, clipped to [0, 1].

Subclasses register themselves with :func:`register_degradation` under a short name and a task
(the restoration task that removes them: one of :data:`aioir.tasks.TASKS`).
"""

from __future__ import annotations

import abc
import dataclasses
import hashlib
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch

from aioir.tasks import TASKS

__all__ = [
    "TASKS",
    "TIERS",
    "Degradation",
    "available_degradations",
    "degradation_class",
    "make_generator",
    "register_degradation",
    "seed_from_name",
    "severity_from_tier",
    "uniform",
]

#: Severity tiers as sub-intervals of [0, 1].
TIERS: dict[str, tuple[float, float]] = {
    "mild": (0.0, 1.0 / 3.0),
    "moderate": (1.0 / 3.0, 2.0 / 3.0),
    "severe": (2.0 / 3.0, 1.0),
}

_REGISTRY: dict[str, type[Degradation]] = {}

D = TypeVar("D", bound="type[Degradation]")


def register_degradation(name: str, task: str) -> Callable[[D], D]:
    """Class decorator: register a :class:`Degradation` subclass under ``name`` for ``task``."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")

    def wrap(cls: D) -> D:
        if name in _REGISTRY:
            raise ValueError(f"degradation {name!r} is already registered")
        cls.name = name
        cls.task = task
        _REGISTRY[name] = cls
        return cls

    return wrap


def degradation_class(name: str) -> type[Degradation]:
    """The registered degradation class called ``name``."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(
            f"unknown degradation {name!r}; available: {', '.join(sorted(_REGISTRY))}"
        ) from None


def available_degradations(task: str | None = None) -> list[str]:
    """Names of the registered degradations (optionally only those of one task)."""
    return sorted(n for n, c in _REGISTRY.items() if task is None or c.task == task)


def seed_from_name(name: str, base_seed: int = 0) -> int:
    """A stable 63-bit seed from a string (e.g. an image's file name) and a base seed.

    Independent of file-listing order, Python's hash randomisation and the platform, so every
    run and every method sees the same degraded test inputs.
    """
    digest = hashlib.sha256(f"{base_seed}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def make_generator(seed: int | torch.Generator | None) -> torch.Generator:
    """A CPU ``torch.Generator`` from a seed (``None`` draws a fresh random seed)."""
    if isinstance(seed, torch.Generator):
        return seed
    gen = torch.Generator()
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(int(seed))
    return gen


def uniform(generator: torch.Generator, low: float, high: float) -> float:
    """One float drawn uniformly from [low, high) with ``generator``."""
    return low + (high - low) * float(torch.rand((), generator=generator))


def severity_from_tier(tier: str | float, generator: torch.Generator | None = None) -> float:
    """A severity in [0, 1]: a float passes through; a tier name draws uniformly inside its third."""
    if isinstance(tier, (int, float)):
        if not 0.0 <= float(tier) <= 1.0:
            raise ValueError(f"severity must lie in [0, 1], got {tier}")
        return float(tier)
    try:
        low, high = TIERS[tier]
    except KeyError:
        raise ValueError(f"unknown tier {tier!r}; expected one of {list(TIERS)}") from None
    if generator is None:
        return 0.5 * (low + high)
    return uniform(generator, low, high)


def _to_batch(image: Any) -> tuple[torch.Tensor, Callable[[torch.Tensor], Any]]:
    """Bring a tensor/array into B×3×H×W float form; return it and the inverse conversion."""
    if isinstance(image, np.ndarray):
        # integer images are scaled by their type's maximum (uint8 255, uint16 65535)
        peak = float(np.iinfo(image.dtype).max) if image.dtype.kind == "u" else None
        arr = image.astype(np.float32) / peak if peak else image.astype(np.float32)
        single = arr.ndim == 3
        t = torch.from_numpy(np.ascontiguousarray(arr[None] if single else arr)).permute(0, 3, 1, 2)

        def back_np(out: torch.Tensor) -> np.ndarray:
            res = out.permute(0, 2, 3, 1).cpu().numpy()
            res = res[0] if single else res
            if peak:
                return np.round(res * peak).astype(image.dtype)
            return res.astype(image.dtype if image.dtype.kind == "f" else np.float32)

        return t, back_np
    if isinstance(image, torch.Tensor):
        single = image.ndim == 3
        dtype = image.dtype
        t = (image[None] if single else image).float()

        def back_t(out: torch.Tensor) -> torch.Tensor:
            out = out[0] if single else out
            return out.to(dtype)

        return t, back_t
    raise TypeError(f"expected a torch.Tensor or numpy.ndarray image, got {type(image).__name__}")


@dataclasses.dataclass(frozen=True)
class Degradation(abc.ABC):
    """Base class: a frozen dataclass of parameters plus a pure ``apply``."""

    name: ClassVar[str] = ""
    task: ClassVar[str] = ""

    @classmethod
    @abc.abstractmethod
    def sample(cls, severity: float, generator: torch.Generator) -> Degradation:
        """Random parameters at ``severity`` in [0, 1] (larger = stronger)."""

    @abc.abstractmethod
    def apply(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Degrade a ``B×3×H×W`` float batch in [0, 1]; returns the same shape, clipped to [0, 1]."""

    def __call__(self, image: Any, seed: int | torch.Generator | None = 0) -> Any:
        """Degrade a tensor or numpy image (single or batched); same kind and shape back."""
        batch, back = _to_batch(image)
        out = self.apply(batch, make_generator(seed)).clamp_(0.0, 1.0)
        return back(out)

    def params(self) -> dict[str, Any]:
        """The parameters as a plain dict (for logs, JSON and reproducibility records)."""
        return {"name": self.name, **dataclasses.asdict(self)}
