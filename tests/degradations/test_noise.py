"""Tests for aioir.degradations.noise: Gaussian (benchmark protocol) and camera noise."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from aioir.degradations import degradation_class
from aioir.degradations.noise import (
    CameraNoise,
    GaussianNoise,
    _bayer_mask,
    _demosaic,
    brooks_read_noise,
    linear_to_srgb,
    poisson_gaussian,
    srgb_to_linear,
)
from helpers import astronaut_batch


def _flat(level: float, shape: tuple[int, ...] = (1, 3, 64, 64)) -> torch.Tensor:
    return torch.full(shape, level)


def test_registry_and_hashable() -> None:
    assert degradation_class("gaussian_noise") is GaussianNoise
    assert degradation_class("camera_noise") is CameraNoise
    assert GaussianNoise.task == CameraNoise.task == "noise"
    assert hash(GaussianNoise(25.0)) == hash(GaussianNoise(25.0))
    assert GaussianNoise(25.0).params()["sigma"] == 25.0
    assert CameraNoise(1e-3, 1e-5).params()["name"] == "camera_noise"


@pytest.mark.parametrize(
    "deg",
    [
        GaussianNoise(25.0),
        GaussianNoise(25.0, quantize=False),
        GaussianNoise(25.0, rounding="truncate"),
        CameraNoise(3e-3, 2e-5, red_gain=2.0, blue_gain=1.7, saturation=0.5),
        CameraNoise(3e-3, 2e-5, demosaic=False, quantize=False),
    ],
)
def test_shape_range_determinism(deg) -> None:
    x = astronaut_batch(48)
    a = deg(x, seed=3)
    assert a.shape == x.shape and a.dtype == torch.float32
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert torch.equal(a, deg(x, seed=3))
    assert not torch.equal(a, deg(x, seed=4))
    # Images of one batch share parameters but not the noise realisation.
    same = deg(torch.stack([x[0], x[0]]), seed=3)
    assert not torch.equal(same[0], same[1])
    if deg.quantize:
        assert torch.allclose(a * 255.0, torch.round(a * 255.0), atol=1e-4)


@pytest.mark.parametrize("name", ["gaussian_noise", "camera_noise"])
def test_numpy_inputs(name: str) -> None:
    deg = degradation_class(name).sample(0.5, torch.Generator().manual_seed(0))
    img_u8 = np.asarray(Image.fromarray(data.astronaut()).resize((48, 48)))
    out = deg(img_u8, seed=1)
    assert out.dtype == np.uint8 and out.shape == (48, 48, 3)
    assert np.abs(out.astype(int) - img_u8.astype(int)).mean() > 0.5
    img_f = img_u8.astype(np.float32) / 255.0
    out_f = deg(img_f, seed=1)
    assert out_f.dtype == np.float32 and out_f.shape == (48, 48, 3)
    assert out_f.min() >= 0.0 and out_f.max() <= 1.0
    np.testing.assert_allclose(out_f * 255.0, out.astype(np.float32), atol=1e-3)
    assert deg(torch.from_numpy(img_f).permute(2, 0, 1).double(), seed=1).dtype == torch.float64


@pytest.mark.parametrize("quantize", [True, False])
def test_gaussian_sigma_matches_nominal(quantize: bool) -> None:
    x = _flat(128 / 255, (2, 3, 64, 64))
    y = GaussianNoise(25.0, quantize=quantize).apply(x, torch.Generator().manual_seed(0))
    sigma = float(((y - x) * 255.0).std())
    assert sigma == pytest.approx(25.0, rel=0.03)


def test_rounding_bias_round_vs_truncate() -> None:
    x = _flat(128 / 255, (2, 3, 64, 64))
    gen = lambda: torch.Generator().manual_seed(5)  # noqa: E731 - same realisation for all three
    float_noisy = GaussianNoise(15.0, quantize=False).apply(x, gen())
    rounded = GaussianNoise(15.0, rounding="round").apply(x, gen())
    truncated = GaussianNoise(15.0, rounding="truncate").apply(x, gen())
    bias_round = float((rounded - float_noisy).mean()) * 255.0
    bias_trunc = float((truncated - float_noisy).mean()) * 255.0
    assert abs(bias_round) < 0.02
    assert bias_trunc == pytest.approx(-0.5, abs=0.02)


def test_gaussian_sample_and_validation() -> None:
    gen = torch.Generator().manual_seed(0)
    sigmas = [GaussianNoise.sample(s, gen).sigma for s in (0.0, 0.5, 1.0)]
    assert sigmas == pytest.approx([5.0, 32.5, 60.0])
    with pytest.raises(ValueError):
        GaussianNoise(-1.0)
    with pytest.raises(ValueError):
        GaussianNoise(10.0, rounding="floor")  # type: ignore[arg-type]


def test_srgb_roundtrip() -> None:
    v = torch.linspace(0.0, 1.0, 1001)
    assert torch.allclose(linear_to_srgb(srgb_to_linear(v)), v, atol=1e-5)
    assert float(srgb_to_linear(torch.tensor(0.5))) == pytest.approx(0.2140, abs=1e-4)


def test_poisson_gaussian_variance_is_affine_in_signal() -> None:
    shot, read = 2e-3, 4e-5
    gen = torch.Generator().manual_seed(0)
    variances = []
    for level in (0.05, 0.2, 0.5):
        x = _flat(level)
        var = float((poisson_gaussian(x, shot, read, gen) - x).var())
        assert var == pytest.approx(shot * level + read, rel=0.06)
        variances.append(var)
    assert variances[0] < variances[1] < variances[2]


def test_demosaic_correlates_noise() -> None:
    x = _flat(0.3)

    def neighbour_corr(demosaic: bool) -> float:
        n = poisson_gaussian(x, 2e-3, 1e-5, torch.Generator().manual_seed(0), demosaic) - x
        a, b = n[..., :, :-1].flatten(), n[..., :, 1:].flatten()
        return float(torch.corrcoef(torch.stack([a, b]))[0, 1])

    assert abs(neighbour_corr(False)) < 0.05
    assert neighbour_corr(True) > 0.2


def test_bilinear_demosaic_keeps_cfa_samples_and_constants() -> None:
    mask = _bayer_mask(7, 9, torch.device("cpu"))
    assert torch.equal(mask.sum(1), torch.ones(1, 7, 9))  # one colour per pixel
    assert float(mask[0, 1].mean()) == pytest.approx(0.5, abs=0.05)  # half the sites are green
    assert torch.allclose(_demosaic(torch.ones(2, 3, 7, 9), mask), torch.ones(2, 3, 7, 9))
    field = torch.rand(2, 3, 7, 9, generator=torch.Generator().manual_seed(0))
    out = _demosaic(field, mask)
    assert torch.allclose(out * mask, field * mask)


def test_camera_noise_variance_increases_with_intensity() -> None:
    """Heteroscedastic: in linear light the noise variance grows with the signal."""
    deg = CameraNoise(3e-3, 1e-5, red_gain=2.0, blue_gain=1.7, saturation=0.5, quantize=False)
    plain = CameraNoise(3e-3, 1e-5, demosaic=False, quantize=False)
    variances, plain_vars = [], []
    for level in (0.1, 0.3, 0.6):  # linear-light grey levels
        x = linear_to_srgb(_flat(level))
        for d, out in ((deg, variances), (plain, plain_vars)):
            y = d.apply(x, torch.Generator().manual_seed(1))
            out.append(float((srgb_to_linear(y) - level).var()))
    assert variances[0] < variances[1] < variances[2]
    # Without ISP extras the linear-light variance is shot·x + read (up to gamma curvature).
    for level, var in zip((0.1, 0.3, 0.6), plain_vars):
        assert var == pytest.approx(3e-3 * level + 1e-5, rel=0.1)


def test_camera_sample_follows_brooks() -> None:
    gen = torch.Generator().manual_seed(0)
    for sev in (0.0, 0.5, 1.0):
        d = CameraNoise.sample(sev, gen)
        assert 1e-4 * 0.999 <= d.shot <= 1.2e-2 * 1.001
        assert 1.9 <= d.red_gain <= 2.4 and 1.5 <= d.blue_gain <= 1.9
        log_resid = math.log(d.read) - (2.18 * math.log(d.shot) + 1.20)
        assert abs(log_resid) < 4 * 0.26
    assert brooks_read_noise(1e-3) == pytest.approx(math.exp(2.18 * math.log(1e-3) + 1.2))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("deg", [GaussianNoise(25.0), CameraNoise(3e-3, 2e-5, 2.0, 1.7, 0.5)])
def test_cuda_matches_cpu(deg) -> None:
    x = astronaut_batch(48)
    cpu = deg.apply(x, torch.Generator().manual_seed(0))
    gpu = deg.apply(x.cuda(), torch.Generator().manual_seed(0))
    assert gpu.device.type == "cuda"
    assert torch.allclose(gpu.cpu(), cpu, atol=2 / 255)
