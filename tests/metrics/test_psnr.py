from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio

import aioir
from aioir.metrics import psnr


def _pair(shape: tuple[int, ...], seed: int, sigma: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    target = rng.random(shape)
    pred = np.clip(target + rng.normal(0.0, sigma, shape), 0.0, 1.0)
    return pred, target


@pytest.mark.parametrize("shape", [(32, 48, 3), (17, 23), (20, 20, 1), (9, 31, 4)])
def test_matches_skimage_random(shape: tuple[int, ...]) -> None:
    pred, target = _pair(shape, seed=len(shape) + shape[0])
    expected = peak_signal_noise_ratio(target, pred, data_range=1.0)
    got = psnr(pred, target)
    assert isinstance(got, float)
    assert got == pytest.approx(expected, abs=1e-6)


def test_matches_skimage_data_range_255() -> None:
    pred, target = _pair((24, 24, 3), seed=3)
    expected = peak_signal_noise_ratio(target * 255, pred * 255, data_range=255)
    assert psnr(pred * 255, target * 255, data_range=255) == pytest.approx(expected, abs=1e-6)
    # the metric only depends on the ratio of error to range
    assert psnr(pred, target) == pytest.approx(expected, abs=1e-9)


def test_uint8_inputs() -> None:
    pred, target = _pair((16, 16, 3), seed=4)
    p8, t8 = (pred * 255).round().astype(np.uint8), (target * 255).round().astype(np.uint8)
    expected = peak_signal_noise_ratio(t8, p8, data_range=255)
    assert psnr(p8, t8, data_range=255) == pytest.approx(expected, abs=1e-6)
    with pytest.raises(ValueError, match="data_range=255"):
        psnr(p8, t8)


def test_real_images_match_skimage(real_pairs: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    for name, (restored, clean) in real_pairs.items():
        expected = peak_signal_noise_ratio(clean, restored, data_range=1.0)
        assert psnr(restored, clean) == pytest.approx(expected, abs=1e-6), name


def test_real_images_y_channel(
    real_pairs: dict[str, tuple[np.ndarray, np.ndarray]],
    basicsr_y_metrics: Callable[[np.ndarray, np.ndarray], tuple[float, float]],
) -> None:
    for name, (restored, clean) in real_pairs.items():
        rgb = psnr(restored, clean)
        y = psnr(restored, clean, y_channel=True)
        # docs/protocols.md, "Measured convention effects": Y (BT.601) PSNR is 2.3–3.3 dB
        # above RGB PSNR on these images
        assert 2.0 <= y - rgb <= 3.5, (name, rgb, y)
        # and equal to BasicSR's test_y_channel result (Y on 0–255, peak 255)
        assert y == pytest.approx(basicsr_y_metrics(restored, clean)[0], abs=1e-6), name
        # plausibility against the team's table: RGB 26.6–29.1 dB
        assert 25.0 < rgb < 31.0, (name, rgb)


def test_identical_is_inf_without_warning() -> None:
    img = np.random.default_rng(5).random((12, 12, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert psnr(img, img.copy()) == math.inf
        t = torch.from_numpy(img).permute(2, 0, 1).unsqueeze(0)
        assert torch.isinf(psnr(t, t.clone())).all()


def test_constant_offset_is_20db() -> None:
    target = np.full((10, 13, 3), 0.25)
    assert psnr(target + 0.1, target) == pytest.approx(20.0, abs=1e-9)
    assert psnr(target, target - 0.1) == pytest.approx(20.0, abs=1e-9)
    t = torch.full((2, 3, 10, 13), 0.25, dtype=torch.float64)
    torch.testing.assert_close(psnr(t + 0.1, t), torch.full((2,), 20.0, dtype=torch.float64))
    # a 0.1 offset on a 0–255 scale with peak 255 is far smaller relative error
    assert psnr(target * 255 + 0.1, target * 255, data_range=255) == pytest.approx(
        20 * math.log10(2550), abs=1e-9
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    ("y_channel", "crop_border"), [(False, 0), (True, 0), (False, 3), (True, 2)]
)
def test_torch_batch_equals_numpy(dtype: torch.dtype, y_channel: bool, crop_border: int) -> None:
    rng = np.random.default_rng(6)
    np_dtype = np.float32 if dtype == torch.float32 else np.float64
    target = rng.random((3, 21, 26, 3)).astype(np_dtype)
    pred = np.clip(target + rng.normal(0, 0.05, target.shape), 0, 1).astype(target.dtype)
    tp = torch.from_numpy(pred).permute(0, 3, 1, 2)
    tt = torch.from_numpy(target).permute(0, 3, 1, 2)
    assert tp.dtype == dtype
    got = psnr(tp, tt, y_channel=y_channel, crop_border=crop_border)
    assert got.shape == (3,)
    assert got.dtype == torch.float64
    for i in range(3):
        expected = psnr(pred[i], target[i], y_channel=y_channel, crop_border=crop_border)
        assert float(got[i]) == pytest.approx(expected, abs=1e-9)


def test_crop_border() -> None:
    pred, target = _pair((30, 40, 3), seed=7)
    pred[:4] = 1.0  # an error confined to the top 4 rows
    cropped = psnr(pred, target, crop_border=4)
    assert cropped == pytest.approx(
        peak_signal_noise_ratio(target[4:-4, 4:-4], pred[4:-4, 4:-4], data_range=1.0), abs=1e-9
    )
    assert cropped > psnr(pred, target) + 1.0


def test_invalid_inputs() -> None:
    a = np.zeros((8, 8, 3))
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(a, np.zeros((8, 9, 3)))
    with pytest.raises(ValueError, match="H×W"):
        psnr(np.zeros((2, 8, 8, 3)), np.zeros((2, 8, 8, 3)))
    with pytest.raises(ValueError, match="N×C×H×W"):
        psnr(torch.zeros(3, 8, 8), torch.zeros(3, 8, 8))
    with pytest.raises(TypeError, match="both"):
        psnr(a, torch.zeros(1, 3, 8, 8))  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="3-channel"):
        psnr(np.zeros((8, 8)), np.zeros((8, 8)), y_channel=True)
    with pytest.raises(ValueError, match="crop_border"):
        psnr(a, a, crop_border=4)
    with pytest.raises(ValueError, match="crop_border"):
        psnr(a, a, crop_border=-1)
    with pytest.raises(ValueError, match="data_range"):
        psnr(a, a, data_range=0)


def test_lazy_top_level_export() -> None:
    assert aioir.psnr is psnr
