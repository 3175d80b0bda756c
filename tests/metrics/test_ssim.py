from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

import aioir
from aioir.metrics import ssim
from aioir.metrics.ssim import SSIM_WINDOWS


def skimage_gaussian(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> float:
    """Wang et al. 2004 settings, as scikit-image documents them."""
    return float(
        structural_similarity(
            a,
            b,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=data_range,
            channel_axis=-1 if a.ndim == 3 else None,
        )
    )


def skimage_default(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> float:
    """scikit-image's default SSIM (7×7 uniform, sample covariance): the PromptIR family."""
    return float(
        structural_similarity(a, b, data_range=data_range, channel_axis=-1 if a.ndim == 3 else None)
    )


REFERENCE = {"gaussian": skimage_gaussian, "uniform": skimage_default}


def _pair(shape: tuple[int, ...], seed: int, sigma: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    # smooth-ish target so SSIM is not near 0
    target = rng.random(shape)
    target = 0.5 * target + 0.5 * np.roll(target, 1, axis=0)
    pred = np.clip(target + rng.normal(0.0, sigma, shape), 0.0, 1.0)
    return pred, target


def test_gaussian_window_size_matches_scikit_image_truncation() -> None:
    # scikit-image: truncate 3.5, radius int(3.5 σ + 0.5) → 11 taps at σ = 1.5
    assert SSIM_WINDOWS["gaussian"] == (2 * int(3.5 * 1.5 + 0.5) + 1, False)
    assert SSIM_WINDOWS["uniform"] == (7, True)


@pytest.mark.parametrize(
    ("window", "shape"),
    [
        *[("gaussian", s) for s in [(32, 45, 3), (19, 27), (40, 33, 1), (11, 11, 3)]],
        *[("uniform", s) for s in [(32, 45, 3), (19, 27), (40, 33, 1), (11, 11, 3), (7, 9, 2)]],
    ],
)
def test_matches_skimage_random(window: str, shape: tuple[int, ...]) -> None:
    pred, target = _pair(shape, seed=sum(shape))
    got = ssim(pred, target, window=window)  # type: ignore[arg-type]
    assert isinstance(got, float)
    assert got == pytest.approx(REFERENCE[window](target, pred), abs=1e-6)


@pytest.mark.parametrize("window", ["gaussian", "uniform"])
def test_matches_skimage_data_range_255(window: str) -> None:
    pred, target = _pair((25, 30, 3), seed=1)
    expected = REFERENCE[window](target * 255, pred * 255, data_range=255.0)
    got = ssim(pred * 255, target * 255, data_range=255, window=window)  # type: ignore[arg-type]
    assert got == pytest.approx(expected, abs=1e-6)
    # SSIM is invariant to scaling the images and the range together
    assert ssim(pred, target, window=window) == pytest.approx(expected, abs=1e-9)  # type: ignore[arg-type]


@pytest.mark.parametrize("window", ["gaussian", "uniform"])
def test_real_images_match_skimage(
    real_pairs: dict[str, tuple[np.ndarray, np.ndarray]], window: str
) -> None:
    for name, (restored, clean) in real_pairs.items():
        got = ssim(restored, clean, window=window)  # type: ignore[arg-type]
        assert got == pytest.approx(REFERENCE[window](clean, restored), abs=1e-6), name


def test_real_images_conventions(
    real_pairs: dict[str, tuple[np.ndarray, np.ndarray]],
    basicsr_y_metrics: Callable[[np.ndarray, np.ndarray], tuple[float, float]],
) -> None:
    for name, (restored, clean) in real_pairs.items():
        gauss = ssim(restored, clean)
        uniform = ssim(restored, clean, window="uniform")
        y = ssim(restored, clean, y_channel=True)
        # docs/protocols.md, "Measured convention effects": window variants differ by < 0.01,
        # Y-mode is 0.11–0.19 higher
        assert abs(gauss - uniform) < 0.01, name
        assert 0.1 <= y - gauss <= 0.2, (name, gauss, y)
        assert 0.6 < gauss < 0.8, (name, gauss)
        # Y mode = BasicSR test_y_channel: Gaussian 11×11 on Y in [0, 255], C1/C2 from 255
        assert y == pytest.approx(basicsr_y_metrics(restored, clean)[1], abs=1e-6), name


@pytest.mark.parametrize("window", ["gaussian", "uniform"])
def test_identical_is_one(window: str) -> None:
    img = np.random.default_rng(2).random((20, 24, 3))
    assert ssim(img, img.copy(), window=window) == pytest.approx(1.0, abs=1e-12)  # type: ignore[arg-type]
    assert ssim(img, img.copy(), y_channel=True) == pytest.approx(1.0, abs=1e-12)
    # a constant image against itself: zero variance, still 1
    flat = np.full((16, 16), 0.3)
    assert ssim(flat, flat) == pytest.approx(1.0, abs=1e-12)


def test_symmetric_and_degrades_with_noise() -> None:
    pred, target = _pair((30, 30, 3), seed=3, sigma=0.05)
    worse, _ = _pair((30, 30, 3), seed=3, sigma=0.2)
    assert ssim(pred, target) == pytest.approx(ssim(target, pred), abs=1e-12)
    assert ssim(worse, target) < ssim(pred, target) < 1.0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    ("window", "y_channel", "crop_border"),
    [("gaussian", False, 0), ("uniform", False, 0), ("gaussian", True, 0), ("uniform", True, 3)],
)
def test_torch_batch_equals_numpy(
    dtype: torch.dtype, window: str, y_channel: bool, crop_border: int
) -> None:
    np_dtype = np.float32 if dtype == torch.float32 else np.float64
    rng = np.random.default_rng(4)
    target = rng.random((3, 24, 29, 3)).astype(np_dtype)
    pred = np.clip(target + rng.normal(0, 0.05, target.shape), 0, 1).astype(np_dtype)
    tp = torch.from_numpy(pred).permute(0, 3, 1, 2)
    tt = torch.from_numpy(target).permute(0, 3, 1, 2)
    kwargs = {"window": window, "y_channel": y_channel, "crop_border": crop_border}
    got = ssim(tp, tt, **kwargs)  # type: ignore[arg-type]
    assert got.shape == (3,)
    assert got.dtype == torch.float64
    for i in range(3):
        expected = ssim(pred[i], target[i], **kwargs)  # type: ignore[arg-type]
        assert float(got[i]) == pytest.approx(expected, abs=1e-9)
        # float32 inputs are upcast before any arithmetic: same as the float64 reference
        ref = REFERENCE[window]
        if not y_channel and crop_border == 0:
            assert float(got[i]) == pytest.approx(
                ref(target[i].astype(np.float64), pred[i].astype(np.float64)), abs=1e-6
            )


def test_torch_is_differentiable() -> None:
    target = torch.rand(2, 3, 16, 16, dtype=torch.float64)
    pred = (target + 0.05 * torch.randn_like(target)).requires_grad_(True)
    loss = (1 - ssim(pred, target)).sum()
    loss.backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all()
    assert pred.grad.abs().sum() > 0


def test_crop_border() -> None:
    pred, target = _pair((40, 36, 3), seed=5)
    expected = skimage_gaussian(target[3:-3, 3:-3], pred[3:-3, 3:-3])
    assert ssim(pred, target, crop_border=3) == pytest.approx(expected, abs=1e-9)
    assert ssim(pred, target, crop_border=3) != pytest.approx(ssim(pred, target), abs=1e-6)


def test_invalid_inputs() -> None:
    with pytest.raises(ValueError, match="11×11"):
        ssim(np.zeros((10, 30, 3)), np.zeros((10, 30, 3)))
    with pytest.raises(ValueError, match="7×7"):
        ssim(np.zeros((30, 6)), np.zeros((30, 6)), window="uniform")
    with pytest.raises(ValueError, match="crop_border=1"):
        ssim(np.zeros((12, 12)), np.zeros((12, 12)), crop_border=1)
    with pytest.raises(ValueError, match="window"):
        ssim(np.zeros((12, 12)), np.zeros((12, 12)), window="box")  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="shapes differ"):
        ssim(torch.zeros(1, 3, 16, 16), torch.zeros(2, 3, 16, 16))
    with pytest.raises(ValueError, match="3-channel"):
        ssim(torch.zeros(1, 1, 16, 16), torch.zeros(1, 1, 16, 16), y_channel=True)
    with pytest.raises(ValueError, match="N×C×H×W"):
        ssim(torch.zeros(16, 16), torch.zeros(16, 16))


def test_lazy_top_level_export() -> None:
    assert aioir.ssim is ssim
