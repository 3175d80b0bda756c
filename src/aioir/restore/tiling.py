"""Tiled inference: overlapping tiles, smooth blending, pad-to-multiple, a memory heuristic.

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
returns equal tiles bit for bit: an identity model gives back exactly its input.

**Memory heuristic** (:func:`choose_tile`). A model's activation memory grows linearly with the
pixels it sees: ``bytes_per_pixel`` is the model's ``inference_bytes_per_pixel`` attribute when it
declares one, else :data:`DEFAULT_BYTES_PER_PIXEL` (conservative for a Restormer at dim 48 in
fp32). The budget is half of the free memory (``MemAvailable`` from ``/proc/meminfo`` on the
CPU, :func:`torch.cuda.mem_get_info` on a GPU), capped at :data:`CPU_BUDGET_CAP` on the CPU so a
24-megapixel photo stays within a few GiB. The whole image runs in one pass when
``padded pixels × bytes_per_pixel`` fits the budget; otherwise the largest tile (a multiple of
the model's ``size_multiple``, at least :data:`MIN_AUTO_TILE`) such that ``tile_batch_size``
tiles fit.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from aioir.nn import padding

__all__ = [
    "CPU_BUDGET_CAP",
    "DEFAULT_BYTES_PER_PIXEL",
    "MIN_AUTO_TILE",
    "available_memory",
    "axis_weights",
    "choose_tile",
    "model_bytes_per_pixel",
    "round_tile",
    "run_padded",
    "tile_starts",
    "tiled_forward",
]

DEFAULT_BYTES_PER_PIXEL: int = 8192
"""Activation bytes per input pixel assumed for a model that declares none (fp32, dim-48 U-Net)."""

CPU_BUDGET_CAP: int = 1 << 30
"""Most activation memory the heuristic plans for on the CPU (1 GiB)."""

MIN_AUTO_TILE: int = 128
"""Smallest tile the heuristic picks (smaller tiles waste time on overlap)."""

_FALLBACK_AVAILABLE: int = 2 << 30  # when the free memory cannot be read (non-Linux CPU)

Forward = Callable[[Tensor], Tensor]


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
) -> Tensor:
    """Restore ``x`` (B×C×H×W) tile by tile and blend the tiles (see the module docstring).

    Args:
        forward: the model call; gets a batch of tiles on ``device`` (sides multiples of
            ``multiple``) and returns outputs of the same spatial size.
        x: the input; stays where it is (e.g. on the CPU) and receives the blended output.
        tile: tile side, rounded to ``multiple``.
        overlap: pixels shared by neighbouring tiles (clamped below the tile size).
        multiple: the model's ``size_multiple``.
        batch_size: tiles run together per ``forward`` call (times ``B``).
        device: where ``forward`` runs (default: ``x``'s device).

    Returns:
        float32 B×C'×H×W on ``x``'s device.
    """
    if x.ndim != 4:
        raise ValueError(f"expected a B×C×H×W tensor, got shape {tuple(x.shape)}")
    if overlap < 0:
        raise ValueError(f"overlap must be >= 0, not {overlap}")
    b, _, h, w = x.shape
    tile = round_tile(tile, multiple)
    overlap = min(overlap, tile - 1)
    device = x.device if device is None else torch.device(device)
    size_y = tile if h > tile else h + (-h) % multiple
    size_x = tile if w > tile else w + (-w) % multiple
    ys, xs = tile_starts(h, tile, overlap), tile_starts(w, tile, overlap)
    wys = axis_weights(h, ys, size_y, overlap)
    wxs = axis_weights(w, xs, size_x, overlap)
    jobs = [(i, j) for i in range(len(ys)) for j in range(len(xs))]
    out: Tensor | None = None
    for k in range(0, len(jobs), max(1, batch_size)):
        chunk = jobs[k : k + max(1, batch_size)]
        tiles = [
            padding.pad_to_multiple(
                x[:, :, ys[i] : ys[i] + size_y, xs[j] : xs[j] + size_x], multiple
            )[0]
            for i, j in chunk
        ]
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
    assert out is not None
    return out


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
    """Activation bytes per input pixel: the model's ``inference_bytes_per_pixel`` if declared."""
    declared = getattr(model, "inference_bytes_per_pixel", None)
    if isinstance(declared, (int, float)) and declared > 0:
        return int(declared)
    return DEFAULT_BYTES_PER_PIXEL


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
) -> int | None:
    """``None`` (whole image) when it fits the memory budget, else a tile size that does.

    The budget is ``fraction × available``, capped at :data:`CPU_BUDGET_CAP` on the CPU. See the
    module docstring for the reasoning.
    """
    budget = fraction * available
    if device_type == "cpu":
        budget = min(budget, CPU_BUDGET_CAP)
    padded = (height + (-height) % multiple) * (width + (-width) % multiple)
    if padded * bytes_per_pixel <= budget:
        return None
    side = math.isqrt(max(1, int(budget / (bytes_per_pixel * max(1, batch_size)))))
    floor = max(MIN_AUTO_TILE, multiple)
    return max(floor, side - side % multiple)
