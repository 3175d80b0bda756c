"""Input handling shared by :mod:`aioir.metrics.psnr` and :mod:`aioir.metrics.ssim`.

Both metrics run on one code path: numpy images are turned into a ``1×C×H×W`` tensor, torch
batches are used as they are, both are cast to float64 (float32 on Apple MPS, which has no
float64), cropped, optionally converted to Y, and scored per image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from aioir.metrics.color import rgb_to_y


@dataclass(frozen=True)
class Batch:
    """Validated metric inputs as ``N×C×H×W`` tensors in the working dtype."""

    pred: torch.Tensor
    target: torch.Tensor
    from_numpy: bool


def working_dtype(device: torch.device) -> torch.dtype:
    """float64 wherever the device supports it (everything but Apple MPS)."""
    return torch.float32 if device.type == "mps" else torch.float64


def _check_integer_range(x: np.ndarray | torch.Tensor, data_range: float, fn: str) -> None:
    if isinstance(x, np.ndarray):
        is_int = np.issubdtype(x.dtype, np.integer) or x.dtype == np.bool_
    else:
        is_int = not x.is_floating_point() and not x.is_complex()
    if is_int and x.size != 0 and float(x.max()) > data_range:
        raise ValueError(
            f"{fn}: integer images with values up to {float(x.max()):g} need a matching "
            f"data_range (e.g. data_range=255 for 8-bit images), got data_range={data_range:g}"
        )


def prepare_batch(
    pred: np.ndarray | torch.Tensor,
    target: np.ndarray | torch.Tensor,
    *,
    fn: str,
    data_range: float,
    y_channel: bool,
    crop_border: int,
    min_size: int,
) -> Batch:
    """Validate, convert to ``N×C×H×W`` working-precision tensors, crop and optionally take Y.

    numpy inputs are ``H×W`` or ``H×W×C`` (channels last); torch inputs are ``N×C×H×W``.
    ``min_size`` is the smallest height/width allowed after cropping (the SSIM window).
    """
    if isinstance(pred, np.ndarray) and isinstance(target, np.ndarray):
        from_numpy = True
    elif isinstance(pred, torch.Tensor) and isinstance(target, torch.Tensor):
        from_numpy = False
    else:
        raise TypeError(
            f"{fn}: pred and target must both be numpy arrays or both torch tensors, "
            f"got {type(pred).__name__} and {type(target).__name__}"
        )
    if tuple(pred.shape) != tuple(target.shape):
        raise ValueError(
            f"{fn}: pred and target shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}"
        )
    if isinstance(data_range, bool) or not float(data_range) > 0:
        raise ValueError(f"{fn}: data_range must be a positive number, got {data_range!r}")
    if isinstance(crop_border, bool) or not isinstance(crop_border, int | np.integer):
        raise ValueError(f"{fn}: crop_border must be an int, got {crop_border!r}")
    if crop_border < 0:
        raise ValueError(f"{fn}: crop_border must be >= 0, got {crop_border}")
    data_range = float(data_range)
    for x in (pred, target):
        if isinstance(x, np.ndarray) and not (
            np.issubdtype(x.dtype, np.floating)
            or np.issubdtype(x.dtype, np.integer)
            or x.dtype == np.bool_
        ):
            raise TypeError(f"{fn}: expected a real-valued array, got dtype {x.dtype}")
        if isinstance(x, torch.Tensor) and x.is_complex():
            raise TypeError(f"{fn}: expected a real-valued tensor, got dtype {x.dtype}")
        _check_integer_range(x, data_range, fn)

    if from_numpy:
        if pred.ndim not in (2, 3):
            raise ValueError(
                f"{fn}: numpy images must be H×W or H×W×C (channels last), got shape {pred.shape}"
            )
        dtype = torch.float64

        def to_nchw(x: np.ndarray) -> torch.Tensor:
            t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))
            t = t.unsqueeze(-1) if t.ndim == 2 else t
            return t.permute(2, 0, 1).unsqueeze(0)

        a, b = to_nchw(pred), to_nchw(target)
    else:
        if pred.ndim != 4:
            raise ValueError(
                f"{fn}: torch inputs must be N×C×H×W batches, got shape {tuple(pred.shape)} "
                "(use x.unsqueeze(0) for a single C×H×W image)"
            )
        if pred.device != target.device:
            raise ValueError(
                f"{fn}: pred and target are on different devices: {pred.device} vs {target.device}"
            )
        dtype = working_dtype(pred.device)
        a, b = pred.to(dtype), target.to(dtype)

    n, c, h, w = a.shape
    if n == 0 or c == 0:
        raise ValueError(f"{fn}: empty input of shape {tuple(pred.shape)}")
    hc, wc = h - 2 * crop_border, w - 2 * crop_border
    if hc < min_size or wc < min_size:
        what = f"the {min_size}×{min_size} SSIM window" if min_size > 1 else "one pixel"
        raise ValueError(
            f"{fn}: image of size {h}×{w} minus crop_border={crop_border} on each side leaves "
            f"{max(hc, 0)}×{max(wc, 0)}, smaller than {what}"
        )
    if crop_border:
        a = a[..., crop_border : h - crop_border, crop_border : w - crop_border]
        b = b[..., crop_border : h - crop_border, crop_border : w - crop_border]
    if y_channel:
        if c != 3:
            raise ValueError(f"{fn}: y_channel=True needs 3-channel RGB images, got {c} channels")
        a, b = rgb_to_y(a, data_range), rgb_to_y(b, data_range)
    return Batch(a, b, from_numpy)
