"""Tiled inference: overlapping tiles, smooth blending, per-image decisions, a memory heuristic.

**Tiles.** Along each axis of length ``L`` with tile size ``T`` (rounded to the model's
``size_multiple``) and overlap ``o``: when ``L <= T`` one tile covers the axis (reflect-padded to
the multiple); otherwise tiles of exactly ``T`` start every ``T - o`` pixels and the last one is
moved back to end at ``L``, so no tile needs padding and every pixel is covered.

**Blending.** Each tile's weight is separable, ``w(y, x) = wy(y) · wx(x)``. On a side that meets
another tile the 1-D weight rises over the first ``o`` pixels: zero over the outer quarter of the
overlap (where a tile's output is worst, its receptive field reaching past the tile), then a
raised cosine up to one. Sides on the image border get weight one. The 1-D weights of all tiles of
an axis are divided by their sum, so the 2-D weights of all tiles sum to one everywhere. Tiles
are merged as a running weighted mean (one H×W float32 buffer of accumulated weight), which
returns equal tiles bit for bit: an identity model gives back exactly its input. A tile is at
least twice the overlap (:func:`minimum_tile`), so no pixel is restored more than twice per axis.

**Per-image decisions** (:mod:`aioir.nn.image_statistics`). Layers that decide from the whole
input (MDTA's channel attention, GCT's gate, the filter-bank head's choice) would decide from each
tile alone and restore the tiles of one photo differently (visible blocks). So before the tiles,
one *recording* pass keeps those decisions (:func:`record_statistics`) — on the whole image when
it fits the memory given (``context_pixels``), else on full-resolution crops spread over the
image and taken as one image (their pixel statistics pooled) — and every tile *replays* them. A
tiled restoration then matches the one-pass restoration up to the tiles' borders (≥ 45 dB on a
photo with the default model, ``tests/restore/test_tiling.py``); for an image too large for one
pass the decisions are estimated from the crops, the same for every tile.

**Memory heuristic** (:func:`choose_tile`). A model's activation memory grows linearly with the
pixels it sees: ``bytes_per_pixel`` is the model's ``inference_bytes_per_pixel`` attribute when it
(or the network inside its wrappers) declares one, else :data:`DEFAULT_BYTES_PER_PIXEL`
(conservative for a Restormer at dim 48 in fp32). The budget (:func:`memory_budget`) is half of
the free memory (``MemAvailable`` from ``/proc/meminfo`` on Linux, ``sysconf`` elsewhere,
:data:`_FALLBACK_AVAILABLE` when neither says; :func:`torch.cuda.mem_get_info` on a GPU), capped
on the CPU at :data:`CPU_BUDGET_CAP` less the image's own buffers. The whole image runs in one pass when
``padded pixels × bytes_per_pixel`` fits the budget (one pass is also the fastest: tiles redo
their overlaps); otherwise the largest tile (a multiple of the model's ``size_multiple``, at
least :data:`MIN_AUTO_TILE` and :func:`minimum_tile`) such that ``tile_batch_size`` tiles fit,
then shrunk as far as the number of tiles per axis allows (less overlap restored twice).
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from aioir.models.wrappers import unwrap
from aioir.nn import padding
from aioir.nn.image_statistics import (
    ImageStatistics,
    has_image_statistics,
    recording,
    replaying,
)
from aioir.nn.inference_memory import declared_bytes_per_pixel

__all__ = [
    "CONTEXT_CROP",
    "CONTEXT_FRACTION",
    "CPU_BUDGET_CAP",
    "DEFAULT_BYTES_PER_PIXEL",
    "IMAGE_BYTES_PER_PIXEL",
    "MIN_AUTO_TILE",
    "available_memory",
    "axis_weights",
    "choose_tile",
    "memory_budget",
    "minimum_tile",
    "model_bytes_per_pixel",
    "record_statistics",
    "round_tile",
    "run_padded",
    "tile_starts",
    "tiled_forward",
]

DEFAULT_BYTES_PER_PIXEL: int = 8192
"""Activation bytes per input pixel assumed for a model that declares none (fp32, dim-48 U-Net)."""

CPU_BUDGET_CAP: int = 3 << 30
"""Most memory the heuristic plans for on the CPU (3 GiB: the default model's "24 megapixels
within 3 GiB" target for the whole process), less the image's own buffers
(:data:`IMAGE_BYTES_PER_PIXEL` per pixel): ~0.8 megapixel in one pass with the default model;
larger tiles gain little, the overlap being a few per cent, and the tiles share the image's
per-image decisions."""

IMAGE_BYTES_PER_PIXEL: int = 40
"""What the process holds per image pixel beside the model's activations: the decoded photo,
the float input and output, the encoded copy being written (≈ 30 B/px), with a margin. With
the cap on activations alone, v4 peaked at 3,101 MiB on a 24-megapixel photo."""

CONTEXT_CROP: int = 128
"""Side of the crops the per-image decisions of an image too large for one pass are taken from
(more, smaller crops spread the sample better: on up-scaled sample photos 128-px crops came
closer to the one-pass decisions than 256-px ones, ``docs/decisions.md``)."""

CONTEXT_FRACTION: float = 0.25
"""Most of an image (as a fraction of its pixels) those crops cover: their cost beside the tiles'."""

MIN_AUTO_TILE: int = 128
"""Smallest tile the heuristic picks (smaller tiles waste time on overlap)."""

_FALLBACK_AVAILABLE: int = 2 << 30  # when the free memory cannot be read (non-Linux CPU)

Forward = Callable[[Tensor], Tensor]
Progress = Callable[[int, int], None]


# ------------------------------------------------------------------------------ padding
def run_padded(forward: Forward, x: Tensor, multiple: int = 1) -> Tensor:
    """``forward`` on ``x`` padded to ``multiple``, cropped back to ``x``'s size."""
    xp, size = padding.pad_to_multiple(x, multiple)
    return padding.unpad(forward(xp), size)


# ------------------------------------------------------------------------------ tile layout
def round_tile(tile: int, multiple: int) -> int:
    """``tile`` rounded up to a multiple of ``multiple``."""
    if tile <= 0:
        raise ValueError(f"tile size must be positive, not {tile}")
    return max(multiple, -(-tile // multiple) * multiple)


def minimum_tile(overlap: int, multiple: int = 1) -> int:
    """The smallest tile side for ``overlap``: ``2 × overlap`` rounded up to ``multiple`` (and at
    least one multiple). Smaller tiles would restore pixels three or more times per axis (a
    259×194 photo in 8-px tiles with a 32-px overlap took 47,124 forwards)."""
    return round_tile(max(1, 2 * overlap), max(1, multiple))


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of the tiles along an axis (see the module docstring)."""
    if length <= tile:
        return [0]
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap must be in [0, tile), got {overlap} for tile {tile}")
    stride = tile - overlap
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)
    return starts


def _ramp(overlap: int) -> Tensor:
    """Rising edge of length ``overlap``: zero over the outer quarter, then a raised cosine."""
    margin = overlap // 4
    n = overlap - 2 * margin
    i = torch.arange(n, dtype=torch.float64)
    rise = 0.5 - 0.5 * torch.cos(math.pi * (i + 0.5) / n)
    return torch.cat(
        [torch.zeros(margin, dtype=torch.float64), rise, torch.ones(margin, dtype=torch.float64)]
    )


def axis_weights(length: int, starts: Sequence[int], size: int, overlap: int) -> list[Tensor]:
    """Normalised 1-D blending weights (float64, one per tile, each of ``size``).

    Their sum over tiles, placed at ``starts``, is one at every position in ``[0, length)``.
    """
    ramp = _ramp(min(overlap, size))
    raw = []
    for k in range(len(starts)):
        w = torch.ones(size, dtype=torch.float64)
        if overlap > 0 and k > 0:
            w[: len(ramp)] *= ramp
        if overlap > 0 and k < len(starts) - 1:
            w[size - len(ramp) :] *= ramp.flip(0)
        raw.append(w)
    total = torch.zeros(max(length, size), dtype=torch.float64)
    for s, w in zip(starts, raw):
        total[s : s + size] += w
    if bool((total[:length] <= 0).any()):  # cannot happen with the layout of tile_starts
        raise RuntimeError("tile layout leaves pixels uncovered")
    total = total.clamp_min(1e-12)
    return [w / total[s : s + size] for s, w in zip(starts, raw)]


# ------------------------------------------------------------------------------ tiled forward
def tiled_forward(
    forward: Forward,
    x: Tensor,
    tile: int,
    overlap: int = 32,
    multiple: int = 1,
    batch_size: int = 4,
    device: torch.device | str | None = None,
    *,
    statistics: bool | None = None,
    context_pixels: int | None = None,
    progress: Progress | None = None,
) -> Tensor:
    """Restore ``x`` (B×C×H×W) tile by tile and blend the tiles (see the module docstring).

    Args:
        forward: the model call; gets a batch of tiles on ``device`` (sides multiples of
            ``multiple``) and returns outputs of the same spatial size.
        x: the input; stays where it is (e.g. on the CPU) and receives the blended output.
        tile: tile side, rounded to ``multiple``; at least :func:`minimum_tile` of ``overlap``.
        overlap: pixels shared by neighbouring tiles.
        multiple: the model's ``size_multiple``.
        batch_size: tiles run together per ``forward`` call (times ``B``).
        device: where ``forward`` runs (default: ``x``'s device).
        statistics: share the per-image decisions of ``forward``'s layers between the tiles
            (module docstring); ``None``: when ``forward`` is a module that makes some
            (:func:`aioir.nn.image_statistics.has_image_statistics`).
        context_pixels: the most pixels (all ``B`` images) the recording pass may run at once:
            the whole image when its padded size fits (``None``: always), else crops
            (:func:`record_statistics`).
        progress: called as ``progress(tiles done, tiles)`` after each batch of tiles.

    Returns:
        float32 B×C'×H×W on ``x``'s device.
    """
    if x.ndim != 4:
        raise ValueError(f"expected a B×C×H×W tensor, got shape {tuple(x.shape)}")
    if overlap < 0:
        raise ValueError(f"overlap must be >= 0, not {overlap}")
    b, _, h, w = x.shape
    tile = round_tile(tile, multiple)
    if tile < minimum_tile(overlap, multiple):
        raise ValueError(
            f"tile {tile} is smaller than twice the overlap ({overlap}); the smallest is "
            f"{minimum_tile(overlap, multiple)}"
        )
    if statistics is None:
        statistics = isinstance(forward, nn.Module) and has_image_statistics(forward)
    device = x.device if device is None else torch.device(device)
    size_y = tile if h > tile else h + (-h) % multiple
    size_x = tile if w > tile else w + (-w) % multiple
    ys, xs = tile_starts(h, tile, overlap), tile_starts(w, tile, overlap)
    wys = axis_weights(h, ys, size_y, overlap)
    wxs = axis_weights(w, xs, size_x, overlap)
    jobs = [(i, j) for i in range(len(ys)) for j in range(len(xs))]
    kept = None
    if statistics and len(jobs) > 1:
        kept = record_statistics(forward, x, multiple, device, context_pixels)
    out: Tensor | None = None
    step = max(1, batch_size)
    for k in range(0, len(jobs), step):
        chunk = jobs[k : k + step]
        tiles = [
            padding.pad_to_multiple(
                x[:, :, ys[i] : ys[i] + size_y, xs[j] : xs[j] + size_x], multiple
            )[0]
            for i, j in chunk
        ]
        with contextlib.nullcontext() if kept is None else replaying(kept):
            result = forward(torch.cat(tiles).to(device))
        if result.shape[-2:] != (size_y, size_x):
            raise RuntimeError(
                f"model returned {tuple(result.shape[-2:])} for a {size_y}×{size_x} tile"
            )
        result = result.to(x.device, torch.float32)
        if out is None:
            out = torch.zeros(b, result.shape[1], h, w, dtype=torch.float32, device=x.device)
            seen = torch.zeros(h, w, dtype=torch.float32, device=x.device)
        for n, (i, j) in enumerate(chunk):
            y0, x0 = ys[i], xs[j]
            th, tw = min(size_y, h - y0), min(size_x, w - x0)
            weight = (wys[i][:th, None] * wxs[j][None, :tw]).to(out)
            # running weighted mean: region += w / (W + w) · (tile − region). Equal tiles give
            # back exactly that value (an identity model returns the input bit for bit).
            region = out[:, :, y0 : y0 + th, x0 : x0 + tw]
            total = seen[y0 : y0 + th, x0 : x0 + tw] + weight
            ratio = torch.where(total > 0, weight / total.clamp_min(1e-30), 0.0)
            region += ratio * (result[n * b : (n + 1) * b, :, :th, :tw] - region)
            seen[y0 : y0 + th, x0 : x0 + tw] = total
        if progress is not None:
            progress(min(k + step, len(jobs)), len(jobs))
    assert out is not None
    return out


def _spread(length: int, size: int, count: int) -> list[int]:
    """``count`` starts of ``size``-long windows spread evenly over ``[0, length)``."""
    centres = [(2 * k + 1) * length // (2 * count) for k in range(count)]
    return [min(length - size, max(0, c - size // 2)) for c in centres]


def record_statistics(
    forward: Forward,
    x: Tensor,
    multiple: int = 1,
    device: torch.device | str | None = None,
    context_pixels: int | None = None,
    crop: int | None = None,
) -> ImageStatistics:
    """The per-image decisions of ``forward`` for ``x`` (:mod:`aioir.nn.image_statistics`).

    From one pass on the whole (padded) image when it fits ``context_pixels`` (``None``:
    always); else from full-resolution ``crop``-px crops (default :data:`CONTEXT_CROP`; shorter
    along a shorter side) spread evenly over the image and taken as one image (their pixel
    statistics pooled) — as many as fit ``context_pixels`` and :data:`CONTEXT_FRACTION` of the
    image. Crops rather than a downscaled copy: noise and blur, which the decisions are about,
    are not the same at another scale.
    """
    b, _, h, w = x.shape
    device = x.device if device is None else torch.device(device)
    padded = b * (h + (-h) % multiple) * (w + (-w) % multiple)
    side = round_tile(CONTEXT_CROP if crop is None else crop, multiple)
    ch, cw = min(side, h - h % multiple), min(side, w - w % multiple)
    if context_pixels is None or padded <= context_pixels or min(ch, cw) < multiple:
        with recording() as kept:
            run_padded(forward, x.to(device), multiple)  # the decisions only
        return kept
    limit = min(context_pixels, int(CONTEXT_FRACTION * padded))
    count = max(1, limit // (b * ch * cw))
    # the grid of at most `count` crops (none overlapping) that holds the most, cells squarest
    rows, cols = max(
        ((r, min(w // cw, count // r)) for r in range(1, min(count, h // ch) + 1)),
        key=lambda rc: (rc[0] * rc[1], -abs(math.log((h / rc[0]) / (w / max(1, rc[1]))))),
    )
    crops = [
        x[:, :, y : y + ch, x0 : x0 + cw]
        for y in _spread(h, ch, rows)
        for x0 in _spread(w, cw, cols)
    ]  # crop-major batch: crop k of image i is sample k·B + i
    with recording(crops=len(crops)) as kept:
        forward(torch.cat(crops).to(device))
    return kept


# ------------------------------------------------------------------------------ memory
def _meminfo_available(path: Path = Path("/proc/meminfo")) -> int | None:
    try:
        text = path.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("MemAvailable:"):
            parts = line.split()
            return int(parts[1]) * 1024 if len(parts) >= 2 and parts[1].isdigit() else None
    return None


def available_memory(device: torch.device | str = "cpu") -> int:
    """Free memory in bytes on ``device``: CUDA's free memory or the host's ``MemAvailable``.

    Falls back to 2 GiB where the host does not say (no ``/proc/meminfo``).
    """
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    found = _meminfo_available()
    if found is None and hasattr(os, "sysconf"):
        try:
            found = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError):
            found = None
    return int(found) if found else _FALLBACK_AVAILABLE


def model_bytes_per_pixel(model: nn.Module) -> int:
    """Activation bytes per input pixel: the model's ``inference_bytes_per_pixel`` if declared,
    else the one the network inside its wrappers declares, else
    :data:`DEFAULT_BYTES_PER_PIXEL`."""
    for candidate in (model, unwrap(model)):
        declared = declared_bytes_per_pixel(candidate)
        if declared is not None:
            return declared
    return DEFAULT_BYTES_PER_PIXEL


def memory_budget(
    available: int, device_type: str = "cpu", fraction: float = 0.5, image_pixels: int = 0
) -> int:
    """Activation memory to plan for: ``fraction × available``; on the CPU at most
    :data:`CPU_BUDGET_CAP` less the ``image_pixels``' own buffers (:data:`IMAGE_BYTES_PER_PIXEL`
    each), and never under a quarter of the cap."""
    budget = int(fraction * available)
    if device_type != "cpu":
        return budget
    cap = max(CPU_BUDGET_CAP // 4, CPU_BUDGET_CAP - IMAGE_BYTES_PER_PIXEL * int(image_pixels))
    return min(budget, cap)


def choose_tile(
    height: int,
    width: int,
    *,
    bytes_per_pixel: int,
    available: int,
    multiple: int = 1,
    batch_size: int = 1,
    device_type: str = "cpu",
    fraction: float = 0.5,
    overlap: int = 0,
) -> int | None:
    """``None`` (whole image) when it fits the memory budget, else a tile size that does.

    The budget is :func:`memory_budget`; the tile is at least :data:`MIN_AUTO_TILE` and
    :func:`minimum_tile` of ``overlap``. See the module docstring for the reasoning.
    """
    budget = memory_budget(available, device_type, fraction, image_pixels=height * width)
    padded = (height + (-height) % multiple) * (width + (-width) % multiple)
    if padded * bytes_per_pixel <= budget:
        return None
    side = math.isqrt(max(1, int(budget / (bytes_per_pixel * max(1, batch_size)))))
    floor = max(round_tile(MIN_AUTO_TILE, max(1, multiple)), minimum_tile(overlap, multiple))
    tile = max(floor, side - side % multiple)
    # as many tiles per axis, as small as they can be: less overlap restored twice
    need = floor
    for length in (height, width):
        count = len(tile_starts(length, tile, overlap))
        need = max(need, length if count == 1 else -(-(length - overlap) // count) + overlap)
    return min(tile, round_tile(need, max(1, multiple)))
