"""Tests for aioir.degradations.lowlight: linear-light under-exposure with sensor noise."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from aioir.degradations import degradation_class
from aioir.degradations.lowlight import LowLight
from aioir.degradations.noise import linear_to_srgb, srgb_to_linear
from helpers import astronaut_batch

NOISY = LowLight(0.1, gamma=1.2, shot=1e-3, read=1e-6, red_gain=1.05, blue_gain=0.95)


def test_registry() -> None:
    assert degradation_class("low_light") is LowLight and LowLight.task == "lowlight"
    assert hash(NOISY) == hash(LowLight(**{k: v for k, v in NOISY.params().items() if k != "name"}))


def test_shape_range_determinism() -> None:
    x = astronaut_batch(48)
    a = NOISY(x, seed=0)
    assert a.shape == x.shape and a.dtype == torch.float32
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert torch.allclose(a * 255.0, torch.round(a * 255.0), atol=1e-4)
    assert torch.equal(a, NOISY(x, seed=0))
    assert not torch.equal(a, NOISY(x, seed=1))
    same = NOISY(torch.stack([x[0], x[0]]), seed=0)
    assert not torch.equal(same[0], same[1])  # independent noise per image


def test_noise_free_pipeline_is_exposure_in_linear_light() -> None:
    x = astronaut_batch(48)
    deg = LowLight(0.2, gamma=1.3, quantize=False)
    expected = linear_to_srgb(0.2 * srgb_to_linear(x) ** 1.3)
    assert torch.allclose(deg.apply(x, torch.Generator()), expected, atol=1e-6)


def test_lowers_brightness_and_noise_is_visible_in_darks() -> None:
    x = astronaut_batch(48)
    y = NOISY(x, seed=0)
    assert float(y.mean()) < 0.7 * float(x.mean())
    clean = LowLight(0.1, gamma=1.2, red_gain=1.05, blue_gain=0.95)(x, seed=0)
    assert float((y - clean).abs().mean()) > 1.0 / 255.0


def test_white_balance_error_shifts_colour() -> None:
    x = torch.full((1, 3, 16, 16), 0.5)
    y = LowLight(0.3, red_gain=1.2, blue_gain=0.8, quantize=False).apply(x, torch.Generator())
    r, g, b = (float(c) for c in y.mean(dim=(0, 2, 3)))
    assert r > g > b


def test_numpy_inputs() -> None:
    img = np.asarray(Image.fromarray(data.astronaut()).resize((48, 48)))
    out = NOISY(img, seed=2)
    assert out.dtype == np.uint8 and out.shape == (48, 48, 3)
    assert out.mean() < 0.7 * img.mean()
    out_f = NOISY(img.astype(np.float32) / 255.0, seed=2)
    assert out_f.dtype == np.float32 and out_f.shape == (48, 48, 3)
    np.testing.assert_allclose(out_f * 255.0, out, atol=1e-3)


def test_sample_ranges() -> None:
    gen = torch.Generator().manual_seed(0)
    for sev in (0.0, 0.5, 1.0):
        d = LowLight.sample(sev, gen)
        assert 0.03 * 0.85 <= d.exposure <= 0.5 * 1.15
        assert 1.0 <= d.gamma <= 1.6
        assert 0.92 <= d.red_gain <= 1.08 and 0.92 <= d.blue_gain <= 1.08
        assert d.shot > 0 and d.read > 0


@pytest.mark.parametrize("kwargs", [{"exposure": 0.0}, {"exposure": 0.1, "gamma": 5.0}])
def test_invalid_parameters(kwargs) -> None:
    with pytest.raises(ValueError):
        LowLight(**kwargs)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu() -> None:
    x = astronaut_batch(48)
    gpu = NOISY.apply(x.cuda(), torch.Generator().manual_seed(0))
    assert gpu.device.type == "cuda"
    assert torch.allclose(gpu.cpu(), NOISY.apply(x, torch.Generator().manual_seed(0)), atol=2 / 255)
