"""Shared fixtures for the metric tests: real images and independent reference implementations."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from skimage import data, filters
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

REAL_IMAGES = ("astronaut", "chelsea", "coffee")


@pytest.fixture(scope="session")
def real_pairs() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """name → (restored, clean) float64 H×W×3 in [0, 1], built as in ``docs/protocols.md``,
    "Measured convention effects": σ = 25 (on the 0–255 scale) Gaussian noise, clipped, then a
    5×5 Gaussian blur (σ 1)."""
    rng = np.random.default_rng(2025)
    pairs = {}
    for name in REAL_IMAGES:
        clean = getattr(data, name)().astype(np.float64) / 255.0
        noisy = np.clip(clean + rng.normal(0.0, 25.0 / 255.0, clean.shape), 0.0, 1.0)
        # truncate 2σ at σ = 1 → radius 2 → a 5×5 kernel
        restored = filters.gaussian(noisy, sigma=1.0, truncate=2.0, channel_axis=-1)
        pairs[name] = (restored, clean)
    return pairs


def _basicsr_y(rgb01: np.ndarray) -> np.ndarray:
    """Y on [16, 235] the way BasicSR gets it: BGR order, BGR weights, 0–255 output scale."""
    bgr = rgb01[..., ::-1]
    return bgr @ np.array([24.966, 128.553, 65.481]) + 16.0


@pytest.fixture
def basicsr_y_metrics() -> Callable[[np.ndarray, np.ndarray], tuple[float, float]]:
    """(PSNR, SSIM) of BasicSR's ``test_y_channel=True`` for RGB [0, 1] images: Y on 0–255, peak
    255, SSIM Gaussian 11×11 σ 1.5 population covariance with C1, C2 from 255 (scikit-image's
    Wang et al. settings; its valid-region crop equals BasicSR's ``[5:-5, 5:-5]``)."""

    def metrics(pred: np.ndarray, target: np.ndarray) -> tuple[float, float]:
        yp, yt = _basicsr_y(pred), _basicsr_y(target)
        p = peak_signal_noise_ratio(yt, yp, data_range=255.0)
        s = structural_similarity(
            yt, yp, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255.0
        )
        return float(p), float(s)

    return metrics
