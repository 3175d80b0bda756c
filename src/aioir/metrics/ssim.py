"""Structural similarity (SSIM), in the two variants the all-in-one literature uses.

For each channel, local statistics are taken with a sliding window ``w`` (weights summing to 1)
over the *valid* region only (windows that fit entirely inside the image; no padding)::

    μx = w*x, μy = w*y,  σx² = k(w*x² − μx²),  σy² = k(w*y² − μy²),  σxy = k(w*xy − μx μy)
    S  = (2 μx μy + C1)(2 σxy + C2) / ((μx² + μy² + C1)(σx² + σy² + C2)),
    C1 = (0.01 · data_range)²,  C2 = (0.03 · data_range)²

SSIM of an image is the mean of ``S`` over the valid region, then the mean over channels
(equivalently over all channels' valid pixels). Computed in float64.

``window="gaussian"`` (default; Wang et al. 2004): 11×11 separable Gaussian, σ = 1.5, normalised
to sum 1, population covariance (``k = 1``). Equal to ``skimage.metrics.structural_similarity(
a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=dr,
channel_axis=-1)`` (scikit-image truncates its Gaussian at 3.5σ → radius 5 → 11 taps, and
discards a 5-pixel border of its reflect-padded map, i.e. keeps exactly the valid region) and to
BasicSR's ``calculate_ssim`` / the MATLAB reference.

``window="uniform"``: 7×7 box filter with sample covariance (``k = 49/48``), scikit-image's
default, used by AirNet/PromptIR/AdaIR: equal to ``structural_similarity(a, b, data_range=dr,
channel_axis=-1)`` (3-pixel border discarded).

``y_channel=True``: the images are replaced by their BT.601 luma (:func:`aioir.metrics.rgb_to_y`,
kept on the input's scale, not rounded) and the chosen window is applied to that single channel
with the same ``data_range``. With the default Gaussian window this is exactly BasicSR's
``calculate_ssim(..., test_y_channel=True)`` (Gaussian 11×11 on Y in [0, 255] with C1, C2 from
255): SSIM is invariant to scaling both images and ``data_range`` together.

Images (after ``crop_border``) must be at least as large as the window in height and width.
"""

from __future__ import annotations

import math
from typing import Literal, overload

import numpy as np
import torch

from aioir.metrics._common import prepare_batch

__all__ = ["SSIM_WINDOWS", "ssim"]

SSIMWindow = Literal["gaussian", "uniform"]
#: Supported SSIM windows: name → (size, sample covariance?).
SSIM_WINDOWS: dict[str, tuple[int, bool]] = {"gaussian": (11, False), "uniform": (7, True)}

_K1, _K2, _SIGMA = 0.01, 0.03, 1.5


def _kernel_1d(window: str) -> list[float]:
    """The 1-D taps of the separable window (float64 values, summing to 1)."""
    size = SSIM_WINDOWS[window][0]
    if window == "uniform":
        return [1.0 / size] * size
    radius = size // 2
    g = [math.exp(-0.5 * (i / _SIGMA) ** 2) for i in range(-radius, radius + 1)]
    total = math.fsum(g)
    return [v / total for v in g]


def _valid_filter(x: torch.Tensor, taps: list[float]) -> torch.Tensor:
    """Separable correlation of ``...×H×W`` with ``taps`` along H and W, valid region only.

    A weighted sum of shifted views: exact like a convolution, and much faster than
    ``conv2d`` for float64 on the CPU (which has no optimised depthwise double kernel).
    """
    k = len(taps)
    h_out, w_out = x.shape[-2] - k + 1, x.shape[-1] - k + 1
    rows = taps[0] * x[..., :, 0:w_out]
    for i in range(1, k):
        rows = rows + taps[i] * x[..., :, i : i + w_out]
    out = taps[0] * rows[..., 0:h_out, :]
    for i in range(1, k):
        out = out + taps[i] * rows[..., i : i + h_out, :]
    return out


def _ssim_per_image(
    x: torch.Tensor, y: torch.Tensor, window: str, data_range: float
) -> torch.Tensor:
    """Mean SSIM map per image of ``N×C×H×W`` tensors (valid-region filtering)."""
    size, sample_cov = SSIM_WINDOWS[window]
    taps = _kernel_1d(window)
    mu_x = _valid_filter(x, taps)
    mu_y = _valid_filter(y, taps)
    cov_norm = size * size / (size * size - 1) if sample_cov else 1.0
    var_x = cov_norm * (_valid_filter(x * x, taps) - mu_x * mu_x)
    var_y = cov_norm * (_valid_filter(y * y, taps) - mu_y * mu_y)
    cov_xy = cov_norm * (_valid_filter(x * y, taps) - mu_x * mu_y)
    c1 = (_K1 * data_range) ** 2
    c2 = (_K2 * data_range) ** 2
    s = ((2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)) / (
        (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
    )
    return s.mean(dim=(1, 2, 3))


@overload
def ssim(
    pred: np.ndarray,
    target: np.ndarray,
    data_range: float = 1.0,
    y_channel: bool = False,
    crop_border: int = 0,
    window: SSIMWindow = "gaussian",
) -> float: ...
@overload
def ssim(
    pred: torch.Tensor,
    target: torch.Tensor,
    data_range: float = 1.0,
    y_channel: bool = False,
    crop_border: int = 0,
    window: SSIMWindow = "gaussian",
) -> torch.Tensor: ...
def ssim(
    pred: np.ndarray | torch.Tensor,
    target: np.ndarray | torch.Tensor,
    data_range: float = 1.0,
    y_channel: bool = False,
    crop_border: int = 0,
    window: SSIMWindow = "gaussian",
) -> float | torch.Tensor:
    """SSIM between a prediction and its reference (see the module docstring for the formulas).

    Args:
        pred, target: numpy ``H×W`` or ``H×W×C`` arrays (channels last), or torch ``N×C×H×W``
            batches, same shape. Values on ``[0, data_range]``.
        data_range: the value range (1 for [0, 1] images, 255 for 8-bit values); sets C1, C2.
        y_channel: score the BT.601 luma of RGB inputs (``C`` must be 3).
        crop_border: pixels removed from every side before scoring.
        window: ``"gaussian"`` (11×11, σ 1.5, population covariance; Wang et al. / BasicSR) or
            ``"uniform"`` (7×7 box, sample covariance; scikit-image default / PromptIR family).

    Returns:
        numpy inputs: a Python ``float``. Torch inputs: a 1-D tensor of ``N`` per-image values on
        the inputs' device, float64 (float32 on MPS); differentiable. Identical images give 1.

    Raises:
        ValueError: unknown window, shapes differ, wrong number of dimensions, image (after
            cropping) smaller than the window, bad ``data_range``/``crop_border``, or
            ``y_channel`` with ``C != 3``.
        TypeError: numpy and torch inputs mixed.
    """
    if window not in SSIM_WINDOWS:
        raise ValueError(f"ssim: window must be one of {sorted(SSIM_WINDOWS)}, got {window!r}")
    batch = prepare_batch(
        pred,
        target,
        fn="ssim",
        data_range=data_range,
        y_channel=y_channel,
        crop_border=crop_border,
        min_size=SSIM_WINDOWS[window][0],
    )
    values = _ssim_per_image(batch.pred, batch.target, window, float(data_range))
    if batch.from_numpy:
        return float(values[0])
    return values
