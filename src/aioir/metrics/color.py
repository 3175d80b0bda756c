"""Luma (Y) conversion used by Y-channel metrics: ITU-R BT.601 as in MATLAB's ``rgb2ycbcr``.

For RGB values ``R, G, B`` in [0, 1] MATLAB (and BasicSR's ``rgb2ycbcr``/``bgr2ycbcr``) computes
on the 0–255 scale::

    Y255 = 16 + 65.481 R + 128.553 G + 24.966 B          (Y255 in [16, 235])

:func:`rgb_to_y` returns ``Y255 / 255 * data_range``, i.e. Y on the *same scale as its input*
(``data_range=1`` → [16/255, 235/255]; ``data_range=255`` → [16, 235]). So a Y-channel metric keeps
the data range of the RGB images: PSNR/SSIM of ``rgb_to_y(x)`` with ``data_range=1`` equal
BasicSR's ``test_y_channel=True`` results, which use Y on [0, 255] with a peak of 255. Y is not
rounded (BasicSR does not round it either).

Input is **RGB** (BasicSR's numpy path takes BGR; reverse the last axis of BGR arrays first).
The weights and offset come from :mod:`aioir.color` (``BT601_RGB_WEIGHTS``, ``BT601_OFFSET``).
"""

from __future__ import annotations

from typing import overload

import numpy as np
import torch

from aioir.color import BT601_OFFSET, BT601_RGB_WEIGHTS

__all__ = ["rgb_to_y"]


@overload
def rgb_to_y(img: np.ndarray, data_range: float = 1.0) -> np.ndarray: ...
@overload
def rgb_to_y(img: torch.Tensor, data_range: float = 1.0) -> torch.Tensor: ...
def rgb_to_y(img: np.ndarray | torch.Tensor, data_range: float = 1.0) -> np.ndarray | torch.Tensor:
    """BT.601 luma of an RGB image, on the same scale as the input (see the module docstring).

    Args:
        img: numpy ``...×3`` array (channels last, e.g. ``H×W×3``) → ``...`` array (``H×W``);
            torch ``...×3×H×W`` tensor (e.g. ``N×3×H×W``) → ``...×1×H×W`` tensor (channel kept).
            Floating inputs keep their dtype; integer inputs give float64 (numpy) or the default
            float dtype (torch).
        data_range: the value of white in ``img`` (1 for [0, 1] images, 255 for 8-bit values).

    Raises:
        ValueError: if the channel axis does not have size 3 or ``data_range`` is not positive.
    """
    if not data_range > 0:
        raise ValueError(f"rgb_to_y: data_range must be positive, got {data_range!r}")
    offset = BT601_OFFSET / 255.0 * data_range
    wr, wg, wb = (w / 255.0 for w in BT601_RGB_WEIGHTS)
    if isinstance(img, torch.Tensor):
        if img.ndim < 3 or img.shape[-3] != 3:
            raise ValueError(
                f"rgb_to_y: expected a torch tensor shaped ...×3×H×W, got {tuple(img.shape)}"
            )
        if not img.is_floating_point():
            img = img.to(torch.get_default_dtype())
        r, g, b = img.narrow(-3, 0, 1), img.narrow(-3, 1, 1), img.narrow(-3, 2, 1)
        return wr * r + wg * g + wb * b + offset
    if isinstance(img, np.ndarray):
        if img.ndim < 1 or img.shape[-1] != 3:
            raise ValueError(f"rgb_to_y: expected a numpy array shaped ...×3, got {img.shape}")
        if not np.issubdtype(img.dtype, np.floating):
            img = img.astype(np.float64)
        r, g, b = img[..., 0], img[..., 1], img[..., 2]
        y = wr * r + wg * g + wb * b + offset
        return y.astype(img.dtype, copy=False)
    raise TypeError(f"rgb_to_y: expected a numpy array or torch tensor, got {type(img).__name__}")
