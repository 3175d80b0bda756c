"""Per-image statistics: decided once per image, shared by every tile of a tiled restoration.

Some layers decide from the whole input: MDTA's channel attention (a ``C×C`` map from all
pixels), GCT's channel gate, a squeeze-excitation gate, a prompt router's weights, the filter-bank
head's per-image choice. Run on a tile, each decides from the tile alone, and the tiles of one
photo come out restored differently (a darker rectangle with a hard edge). Such a layer computes
its decision through :func:`image_statistic` (and marks its class ``image_statistics = True``,
which :func:`has_image_statistics` reads), which

* outside the two modes below just computes it: a plain forward is unchanged, bit for bit;
* under :func:`recording` computes it and keeps it — one forward on the whole image, or on a
  sample of its tiles taken as one image (``crops=K``: the layers pool their pixel means over
  the ``K`` crops of each image with :func:`pool_crops` before deciding, so the decision is the
  one a single image made of those crops would get);
* under :func:`replaying` returns the kept decision instead of computing one (every tile).

Batches: under ``crops=K`` the batch holds ``K`` crops of each of ``B`` images, crop-major
(sample ``k·B + b``, the order in which :func:`aioir.restore.tiling.tiled_forward` stacks tiles).
Kept decisions are per image (``B×…``) and are replayed onto a batch of ``n`` tiles of the same
``B`` images (``n·B`` samples) by repetition. They are keyed by the layer and the number of its
calls since the mode began, so a replaying forward must make the calls of the recording one in
the same order — which a network run on a tile of the same image does.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

__all__ = [
    "ImageStatistics",
    "crop_count",
    "has_image_statistics",
    "image_statistic",
    "pool_crops",
    "recording",
    "replaying",
]


@dataclass
class ImageStatistics:
    """The decisions a recording forward kept: ``(layer id, call number) → B×…`` tensor."""

    values: dict[tuple[int, int], Tensor] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.values)


@dataclass
class _Mode:
    replay: bool
    statistics: ImageStatistics
    crops: int = 1
    calls: dict[int, int] = field(default_factory=dict)

    def key(self, module: nn.Module) -> tuple[int, int]:
        n = self.calls.get(id(module), 0)
        self.calls[id(module)] = n + 1
        return id(module), n


_MODE: contextvars.ContextVar[_Mode | None] = contextvars.ContextVar(
    "aioir_image_statistics", default=None
)


@contextlib.contextmanager
def recording(crops: int = 1) -> Iterator[ImageStatistics]:
    """Keep the per-image decisions of the forward run inside (``crops`` crops per image)."""
    if crops < 1:
        raise ValueError(f"crops must be at least 1, not {crops}")
    mode = _Mode(replay=False, statistics=ImageStatistics(), crops=crops)
    token = _MODE.set(mode)
    try:
        yield mode.statistics
    finally:
        _MODE.reset(token)


@contextlib.contextmanager
def replaying(statistics: ImageStatistics) -> Iterator[None]:
    """Use ``statistics`` (from :func:`recording`) instead of deciding, in the forward inside."""
    token = _MODE.set(_Mode(replay=True, statistics=statistics))
    try:
        yield
    finally:
        _MODE.reset(token)


def crop_count() -> int:
    """Crops per image of the recording forward in progress (1 otherwise)."""
    mode = _MODE.get()
    return 1 if mode is None or mode.replay else mode.crops


def pool_crops(values: Tensor, reduce: str = "mean") -> Tensor:
    """Per-sample spatial means (or sums) → the same over all crops of each image.

    ``values`` (``K·B×…``) holds one mean (``reduce="mean"``), sum (``"sum"``) or log of a
    mean (``"logmeanexp"``) over the pixels of each sample; the result has the same shape, each
    crop holding its image's pooled value (the mean of the crops' means — they have equal sizes
    —, the sum of their sums, or the log of the mean of their means). The identity unless a
    :func:`recording` with ``crops > 1`` is in progress.
    """
    crops = crop_count()
    if crops == 1:
        return values
    if reduce not in ("mean", "sum", "logmeanexp"):
        raise ValueError(f"reduce must be 'mean', 'sum' or 'logmeanexp', not {reduce!r}")
    if values.shape[0] % crops:
        raise RuntimeError(f"a batch of {values.shape[0]} is not {crops} crops per image")
    grouped = values.reshape(crops, values.shape[0] // crops, *values.shape[1:])
    if reduce == "logmeanexp":
        pooled = torch.logsumexp(grouped, dim=0) - math.log(crops)
    else:
        pooled = grouped.sum(0) if reduce == "sum" else grouped.mean(0)
    return pooled.repeat(crops, *([1] * (values.ndim - 1)))


def image_statistic(module: nn.Module, batch: int, compute: Callable[[], Tensor]) -> Tensor:
    """``module``'s per-image decision for a batch of ``batch`` samples (``batch×…``).

    ``compute()`` makes it (pooling with :func:`pool_crops`); see the module docstring for what
    recording and replaying do with it.
    """
    mode = _MODE.get()
    if mode is None:
        return compute()
    key = mode.key(module)
    if not mode.replay:
        value = compute()
        mode.statistics.values[key] = value[: value.shape[0] // mode.crops]
        return value
    kept = mode.statistics.values.get(key)
    if kept is None:
        raise RuntimeError(
            f"{type(module).__name__} made a per-image decision that the recording pass did not "
            "make (the tile forward differs from the whole-image one)"
        )
    if batch % kept.shape[0]:
        raise RuntimeError(f"a batch of {batch} is not tiles of {kept.shape[0]} images")
    return kept.repeat(batch // kept.shape[0], *([1] * (kept.ndim - 1)))


def has_image_statistics(model: nn.Module) -> bool:
    """Whether any layer of ``model`` makes per-image decisions (``image_statistics = True``)."""
    return any(getattr(type(m), "image_statistics", False) is True for m in model.modules())
