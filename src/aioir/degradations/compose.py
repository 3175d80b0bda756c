"""Composition of degradations, random degradations by task and ABAIR's degradation CutMix."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch

from aioir.degradations.base import (
    Degradation,
    available_degradations,
    degradation_class,
    make_generator,
    severity_from_tier,
)
from aioir.tasks import TASKS

__all__ = [
    "PHYSICAL_ORDER",
    "Compose",
    "CutMixResult",
    "canonical_order",
    "degradation_cutmix",
    "random_degradation",
]

#: Rank of each task in the physical image-formation order: the scene medium (haze, water)
#: first, then rain in front of the scene, optics (blur), exposure (low light), sensor noise,
#: and compression last.
PHYSICAL_ORDER: dict[str, int] = {
    "haze": 0,
    "underwater": 0,
    "rain": 1,
    "blur": 2,
    "lowlight": 3,
    "noise": 4,
    "jpeg": 5,
}


def _rank(d: Degradation) -> int:
    if isinstance(d, Compose):
        return min((_rank(x) for x in d.degradations), default=0)
    return PHYSICAL_ORDER.get(d.task, len(PHYSICAL_ORDER))


def canonical_order(degradations: Sequence[Degradation]) -> tuple[Degradation, ...]:
    """The degradations sorted into physical order (haze/underwater → rain → blur → low light →
    noise → jpeg); ties keep their given order (stable sort)."""
    return tuple(sorted(degradations, key=_rank))


@dataclasses.dataclass(frozen=True)
class Compose(Degradation):
    """Apply several degradations in the given order (use :func:`canonical_order` to sort).

    All randomness comes from the one generator, consumed by each degradation in turn, so a seed
    fixes the whole chain.
    """

    degradations: tuple[Degradation, ...] = ()

    name = "compose"

    def __post_init__(self) -> None:
        degs = tuple(self.degradations)
        for d in degs:
            if not isinstance(d, Degradation):
                raise TypeError(f"Compose expects Degradation instances, got {type(d).__name__}")
        object.__setattr__(self, "degradations", degs)

    @property
    def tasks(self) -> tuple[str, ...]:
        """The tasks of the composed degradations, in application order."""
        out: list[str] = []
        for d in self.degradations:
            out.extend(d.tasks if isinstance(d, Compose) else (d.task,))
        return tuple(out)

    @classmethod
    def sample(cls, severity: float, generator: torch.Generator) -> Compose:
        """A random mixture of 2 or 3 distinct tasks at ``severity``, in canonical order."""
        k = 2 + int(torch.randint(0, 2, (), generator=generator))
        perm = torch.randperm(len(TASKS), generator=generator)[:k].tolist()
        mixed = random_degradation([TASKS[i] for i in perm], severity, generator)
        return mixed if isinstance(mixed, Compose) else cls((mixed,))

    def apply(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Apply each degradation in order to a ``B×3×H×W`` batch."""
        out = images
        for d in self.degradations:
            out = d.apply(out, generator).clamp(0.0, 1.0)
        return out

    def params(self) -> dict[str, Any]:
        """``{"name": "compose", "degradations": [each one's params, in order]}``."""
        return {"name": self.name, "degradations": [d.params() for d in self.degradations]}


def random_degradation(
    tasks: Sequence[str] | str,
    severity: float | str = "moderate",
    generator: torch.Generator | int | None = None,
    *,
    names: Sequence[str] | None = None,
) -> Degradation:
    """A random degradation for each requested task; one :class:`Degradation` or a :class:`Compose`.

    * ``tasks`` — one task name or several distinct ones, from :data:`aioir.tasks.TASKS`.
    * ``severity`` — a float in [0, 1] or a tier (``"mild"``, ``"moderate"``, ``"severe"``); a tier
      draws a fresh severity inside its third for each task.
    * ``generator`` — a ``torch.Generator`` or a seed (``None``: a random seed).
    * ``names`` — restrict the choice of registered degradations: for every task that has at
      least one of ``names``, only those are used; other tasks choose among all of theirs.
      Within the candidates the choice is uniform.

    Several tasks come back as a :class:`Compose` in :func:`canonical_order`.
    """
    gen = make_generator(generator)
    task_list = [tasks] if isinstance(tasks, str) else list(tasks)
    if not task_list:
        raise ValueError("need at least one task")
    if len(set(task_list)) != len(task_list):
        raise ValueError(f"duplicate tasks in {task_list}")
    wanted = set(names or ())
    for n in wanted:
        degradation_class(n)  # raises KeyError for unknown names
    chosen: list[Degradation] = []
    for task in task_list:
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
        candidates = available_degradations(task)
        restricted = [c for c in candidates if c in wanted]
        if restricted:
            candidates = restricted
        if not candidates:
            raise ValueError(f"no degradation is registered for task {task!r}")
        pick = candidates[int(torch.randint(0, len(candidates), (), generator=gen))]
        s = severity_from_tier(severity, gen)
        chosen.append(degradation_class(pick).sample(s, gen))
    if len(chosen) == 1:
        return chosen[0]
    return Compose(canonical_order(chosen))


class CutMixResult(NamedTuple):
    """Output of :func:`degradation_cutmix`."""

    #: ``B×3×H×W`` composite image in [0, 1].
    degraded: torch.Tensor
    #: ``B×H×W`` int64 class per pixel (0 = clean).
    label_map: torch.Tensor


def _class_labels(
    degradations: Sequence[Degradation], classes: Sequence[int] | str | None
) -> list[int]:
    if classes is None:
        return list(range(1, len(degradations) + 1))
    if isinstance(classes, str):
        if classes != "task":
            raise ValueError(f"classes must be None, 'task' or a sequence of ints, got {classes!r}")
        out = []
        for d in degradations:
            if isinstance(d, Compose):
                raise ValueError("classes='task' needs single-task degradations, got a Compose")
            out.append(TASKS.index(d.task) + 1)
        return out
    labels = [int(c) for c in classes]
    if len(labels) != len(degradations):
        raise ValueError("classes must give one label per degradation")
    if any(c < 1 for c in labels):
        raise ValueError("class labels must be ≥ 1 (0 is reserved for clean pixels)")
    return labels


def degradation_cutmix(
    images: torch.Tensor,
    degradations: Sequence[Degradation],
    generator: torch.Generator,
    *,
    classes: Sequence[int] | str | None = None,
    num_regions: int | tuple[int, int] = (2, 4),
    clean_prob: float = 0.2,
    box_scale: tuple[float, float] = (0.3, 0.7),
) -> CutMixResult:
    """ABAIR's degradation CutMix: different rectangular regions get different degradations.

    Every degradation is first applied to the whole batch (in the given order, consuming
    ``generator``), so global degradations such as haze stay physically coherent; then, per
    image, a background source and ``n − 1`` rectangles (``n`` drawn from ``num_regions``,
    inclusive) each pick a source — clean with probability ``clean_prob``, else one of the
    degradations uniformly — and later rectangles are pasted over earlier ones. Rectangle sides
    are fractions ``box_scale`` of the image sides.

    Labels: 0 = clean; with ``classes=None`` degradation ``k`` (0-based) is class ``k + 1``;
    ``classes="task"`` uses ``TASKS.index(task) + 1`` (several degradations may share a class);
    a sequence gives explicit labels (≥ 1) per degradation.
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected a B×3×H×W batch, got shape {tuple(images.shape)}")
    if not degradations:
        raise ValueError("need at least one degradation")
    if not 0.0 <= clean_prob <= 1.0:
        raise ValueError(f"clean_prob must lie in [0, 1], got {clean_prob}")
    lo_n, hi_n = (num_regions, num_regions) if isinstance(num_regions, int) else num_regions
    if not 1 <= lo_n <= hi_n:
        raise ValueError(f"num_regions must satisfy 1 ≤ low ≤ high, got {num_regions}")
    labels = _class_labels(degradations, classes)
    b, _, h, w = images.shape
    dev = images.device
    k = len(degradations)

    stack = torch.stack(
        [images.clamp(0.0, 1.0)]
        + [d.apply(images, generator).clamp(0.0, 1.0) for d in degradations],
        dim=1,
    )  # B×(K+1)×3×H×W, source 0 = clean

    def draw_sources(count: int) -> torch.Tensor:
        clean = torch.rand(b, count, generator=generator) < clean_prob
        which = torch.randint(1, k + 1, (b, count), generator=generator)
        return torch.where(clean, torch.zeros_like(which), which)

    n_regions = torch.randint(lo_n, hi_n + 1, (b,), generator=generator)
    n_boxes = hi_n - 1
    sources = draw_sources(1 + n_boxes)  # B×(1+boxes)
    s_lo, s_hi = box_scale
    bh = s_lo + (s_hi - s_lo) * torch.rand(b, n_boxes, generator=generator)
    bw = s_lo + (s_hi - s_lo) * torch.rand(b, n_boxes, generator=generator)
    y0 = (1.0 - bh) * torch.rand(b, n_boxes, generator=generator)
    x0 = (1.0 - bw) * torch.rand(b, n_boxes, generator=generator)
    active = torch.arange(n_boxes).view(1, -1) < (n_regions.view(-1, 1) - 1)  # B×boxes

    ys = (torch.arange(h, dtype=torch.float32) + 0.5) / h
    xs = (torch.arange(w, dtype=torch.float32) + 0.5) / w
    src = sources[:, 0].view(b, 1, 1).expand(b, h, w).clone()
    for j in range(n_boxes):  # loop over a handful of boxes, not pixels
        in_y = (ys.view(1, h, 1) >= y0[:, j].view(b, 1, 1)) & (
            ys.view(1, h, 1) < (y0[:, j] + bh[:, j]).view(b, 1, 1)
        )
        in_x = (xs.view(1, 1, w) >= x0[:, j].view(b, 1, 1)) & (
            xs.view(1, 1, w) < (x0[:, j] + bw[:, j]).view(b, 1, 1)
        )
        inside = in_y & in_x & active[:, j].view(b, 1, 1)
        src = torch.where(inside, sources[:, 1 + j].view(b, 1, 1), src)

    src_dev = src.to(dev)
    index = src_dev.view(b, 1, 1, h, w).expand(b, 1, 3, h, w)
    degraded = torch.gather(stack, 1, index).squeeze(1)
    lut = torch.tensor([0, *labels], dtype=torch.int64, device=dev)
    return CutMixResult(degraded=degraded, label_map=lut[src_dev])
