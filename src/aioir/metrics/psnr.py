"""Peak signal-to-noise ratio.

Definition (per image)::

    PSNR = 10 · log10(data_range² / MSE),   MSE = mean of (pred − target)² over all pixels and
                                                  channels (or over Y when ``y_channel=True``)

computed in float64. This is ``skimage.metrics.peak_signal_noise_ratio(target, pred,
data_range=data_range)`` and, with ``y_channel=True``, BasicSR's ``calculate_psnr(...,
test_y_channel=True)`` (Y from :func:`aioir.metrics.rgb_to_y`, BT.601 as MATLAB's ``rgb2ycbcr``;
BasicSR's peak 255 on a 0–255 Y equals our ``data_range`` on Y kept at the input's scale).

Identical images give ``inf`` (no epsilon is added, unlike BasicSR's torch variant which adds
1e-8 to the MSE), so averaging over a data set with one perfect image gives ``inf``: callers
that average must decide how to treat it. A batch mean of PSNR is the *mean of per-image
values*, never a PSNR of the pooled MSE.
"""

from __future__ import annotations

from typing import overload

import numpy as np
import torch

from aioir.metrics._common import prepare_batch

__all__ = ["psnr"]


@overload
def psnr(
    pred: np.ndarray,
    target: np.ndarray,
    data_range: float = 1.0,
    y_channel: bool = False,
    crop_border: int = 0,
) -> float: ...
@overload
def psnr(
    pred: torch.Tensor,
    target: torch.Tensor,
    data_range: float = 1.0,
    y_channel: bool = False,
    crop_border: int = 0,
) -> torch.Tensor: ...
def psnr(
    pred: np.ndarray | torch.Tensor,
    target: np.ndarray | torch.Tensor,
    data_range: float = 1.0,
    y_channel: bool = False,
    crop_border: int = 0,
) -> float | torch.Tensor:
    """PSNR in dB between a prediction and its reference (symmetric in the two).

    Args:
        pred, target: numpy ``H×W`` or ``H×W×C`` arrays (channels last), or torch ``N×C×H×W``
            batches, same shape. Values on ``[0, data_range]``.
        data_range: the peak value (1 for [0, 1] images, 255 for 8-bit values).
        y_channel: score the BT.601 luma of RGB inputs (``C`` must be 3) instead of all channels.
        crop_border: pixels removed from every side before scoring.

    Returns:
        numpy inputs: a Python ``float``. Torch inputs: a 1-D tensor of ``N`` per-image values on
        the inputs' device, float64 (float32 on MPS). ``inf`` where the images are identical.

    Raises:
        ValueError: shapes differ, wrong number of dimensions, crop leaves no pixel, bad
            ``data_range``/``crop_border``, or ``y_channel`` with ``C != 3``.
        TypeError: numpy and torch inputs mixed.
    """
    batch = prepare_batch(
        pred,
        target,
        fn="psnr",
        data_range=data_range,
        y_channel=y_channel,
        crop_border=crop_border,
        min_size=1,
    )
    mse = (batch.pred - batch.target).square().mean(dim=(1, 2, 3))
    # data_range² / 0 = inf → log10 = inf: identical images give inf without a warning
    values = 10.0 * torch.log10(float(data_range) ** 2 / mse)
    if batch.from_numpy:
        return float(values[0])
    return values
