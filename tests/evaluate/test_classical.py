"""Classical comparators on small real-photo crops with aioir's own degradations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aioir.degradations import degradation_class
from aioir.degradations.noise import GaussianNoise
from aioir.errors import ConfigError
from aioir.evaluate.benchmarks import Case
from aioir.evaluate.classical import (
    CLASSICAL_METHODS,
    TASK_METHODS,
    adaptive_gamma,
    cbm3d,
    dark_channel,
    dehaze_dcp,
    derain_median,
    estimate_noise_sigma,
    get_classical,
    grayworld_stretch,
    lime,
    unsharp_mask,
)
from aioir.evaluate.methods import ClassicalModel

from .conftest import sample_photo


def _psnr(x: np.ndarray, y: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((np.asarray(x, np.float64) - y) ** 2)))


def _centre(name: str, size: int = 96) -> np.ndarray:
    img = sample_photo(name).astype(np.float64)
    h, w = img.shape[:2]
    return img[h // 2 - size // 2 : h // 2 + size // 2, w // 2 - size // 2 : w // 2 + size // 2]


def _degrade(name: str, clean: np.ndarray, severity: float = 0.5, seed: int = 2) -> np.ndarray:
    from aioir.degradations import make_generator

    deg = degradation_class(name).sample(severity, make_generator(1))
    return deg(clean.astype(np.float32), seed=seed).astype(np.float64)


def test_every_task_has_a_method_and_names_are_checked():
    assert set(TASK_METHODS) == {
        "noise",
        "haze",
        "lowlight",
        "underwater",
        "blur",
        "rain",
        "clean",
    }
    assert TASK_METHODS["haze"] == "dcp" and TASK_METHODS["noise"] == "cbm3d"
    assert TASK_METHODS["lowlight"] == "lime" and TASK_METHODS["clean"] == "identity"
    assert all(m in CLASSICAL_METHODS for m in TASK_METHODS.values())
    assert CLASSICAL_METHODS["adaptive-gamma"].task == "lowlight"
    with pytest.raises(ConfigError, match="unknown classical method"):
        get_classical("wiener")
    assert "not deblurring" in CLASSICAL_METHODS["unsharp"].title
    assert "baseline" in CLASSICAL_METHODS["median-derain"].title


@pytest.mark.parametrize("name", ["wine.jpg", "bridge.jpg"])
def test_noise_sigma_estimate_is_close_on_a_real_crop(name):
    clean = _centre(name, 128)
    rng = np.random.default_rng(0)
    for sigma in (15, 25, 50):
        noisy = clean + rng.normal(0, sigma / 255, clean.shape)  # unclipped: pure AWGN
        assert estimate_noise_sigma(noisy) * 255 == pytest.approx(sigma, rel=0.1)
    # fine texture biases a blind estimate upwards (and the table says "estimated")
    textured = _centre("life.jpg", 128)
    assert estimate_noise_sigma(textured) > estimate_noise_sigma(clean)


@pytest.mark.parametrize("sigma", [None, 25 / 255])
def test_cbm3d_raises_psnr_with_known_or_estimated_sigma(sigma):
    clean = _centre("wine.jpg", 64)
    noisy = GaussianNoise(25.0)(clean.astype(np.float32), seed=3).astype(np.float64)
    out = cbm3d(noisy, sigma)
    assert _psnr(out, clean) > _psnr(noisy, clean) + 5.0


def test_dark_channel_prior_reduces_haze_error():
    clean = _centre("wine.jpg", 128)
    hazy = _degrade("haze", clean)
    assert dark_channel(hazy, 7).mean() > dark_channel(clean, 7).mean() + 0.1
    out = dehaze_dcp(hazy)
    assert _psnr(out, clean) > _psnr(hazy, clean) + 3.0
    assert dark_channel(out, 7).mean() < dark_channel(hazy, 7).mean()


def test_lime_brightens_low_light():
    clean = _centre("friends.jpg", 96)
    dark = _degrade("low_light", clean)
    out = lime(dark)
    assert out.mean() > dark.mean() + 0.1
    assert _psnr(out, clean) > _psnr(dark, clean) + 3.0


def test_lime_downscaled_solve_matches_shape():
    img = _centre("friends.jpg", 64) * 0.2
    out = lime(img, max_pixels=1000)
    assert out.shape == img.shape and out.mean() > img.mean()


def test_grayworld_removes_an_underwater_cast():
    clean = _centre("life.jpg", 96)
    under = _degrade("underwater", clean)
    out = grayworld_stretch(under)
    cast = lambda x: np.ptp(x.reshape(-1, 3).mean(axis=0))  # noqa: E731
    assert cast(out) < cast(under)
    assert _psnr(out, clean) > _psnr(under, clean) + 2.0


def test_median_derain_reduces_rain_error():
    clean = _centre("greentock.jpg", 96)
    rainy = _degrade("rain", clean)
    out = derain_median(rainy)
    assert _psnr(out, clean) > _psnr(rainy, clean) + 2.0


def test_unsharp_mask_sharpens_mild_blur():
    clean = _centre("wine.jpg", 96)
    blurred = _degrade("gaussian_blur", clean, severity=0.2)
    out = unsharp_mask(blurred)
    assert _psnr(out, clean) > _psnr(blurred, clean)


def test_classical_auto_dispatches_by_task_and_falls_back_to_identity():
    img = torch.rand(3, 24, 24)
    auto = ClassicalModel("auto")
    out, note = auto.restore(img, Case("x", "a.png", "lowlight", img, None))
    assert "LIME" in note and out.shape == img.shape and not torch.equal(out, img)
    out, note = auto.restore(img, Case("x", "a.png", "", img, None))
    assert torch.equal(out, img) and "no classical method" in note


def test_adaptive_gamma_brightens_a_dark_image_towards_half_and_keeps_mid_grey():
    clean = _centre("wine.jpg", 64)
    dark = clean * 0.15
    out = adaptive_gamma(dark)
    luma = np.array([0.299, 0.587, 0.114])
    before, after = float((dark @ luma).mean()), float((out @ luma).mean())
    assert before < 0.15 and 0.4 < after <= 0.5 + 1e-9  # Jensen: a power < 1 lands at ≤ 0.5
    assert _psnr(out, clean) > _psnr(dark, clean) + 3.0
    # an image whose mean luma is 0.5 is (nearly) left alone
    rng = np.random.default_rng(0)
    grey = np.clip(0.5 + rng.normal(0, 0.05, (32, 32, 3)), 0, 1)
    grey += 0.5 - float((grey @ luma).mean())
    assert np.abs(adaptive_gamma(grey) - grey).max() < 1e-3
    # a bright image darkens (γ > 1); the order of pixels is kept
    bright = np.clip(clean * 0.3 + 0.65, 0, 1)
    assert float((adaptive_gamma(bright) @ luma).mean()) < float((bright @ luma).mean())
    with pytest.raises(ValueError, match="target"):
        adaptive_gamma(dark, target=1.0)


def test_classical_auto_leaves_clean_inputs_alone():
    img = torch.rand(3, 16, 16)
    case = Case("clean", "x.png", "clean", img, img, {})
    out, note = ClassicalModel("auto").restore(img, case)
    assert torch.equal(out, img) and "no classical method" not in note
