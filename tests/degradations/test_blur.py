"""Tests for aioir.degradations.blur: motion (camera shake), Gaussian and defocus blur."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage
from skimage import data

from aioir.degradations import blur, degradation_class
from aioir.degradations.blur import (
    DefocusBlur,
    GaussianBlur,
    MotionBlur,
    apply_kernel,
    disk_kernel,
    gaussian_kernel1d,
    motion_kernel,
)
from helpers import astronaut_batch, psnr_db

NAMES = ["motion_blur", "gaussian_blur", "defocus_blur"]


def _spread(k: torch.Tensor) -> float:
    """Root-mean-square radius of a kernel around its centroid."""
    n = k.shape[0]
    yy, xx = torch.meshgrid(torch.arange(n).float(), torch.arange(n).float(), indexing="ij")
    cy, cx = float((k * yy).sum()), float((k * xx).sum())
    return math.sqrt(float((k * ((yy - cy) ** 2 + (xx - cx) ** 2)).sum()))


def test_registry() -> None:
    for name, cls in zip(NAMES, (MotionBlur, GaussianBlur, DefocusBlur)):
        assert degradation_class(name) is cls and cls.task == "blur"


def test_motion_kernel_properties() -> None:
    k = motion_kernel(21, torch.Generator().manual_seed(0), length=15.0)
    assert k.shape == (21, 21) and k.dtype == torch.float32
    assert float(k.min()) >= 0.0
    assert float(k.sum()) == pytest.approx(1.0, abs=1e-5)
    assert float(k.max()) < 0.5  # not a delta
    assert int((k > 1e-3).sum()) > 10
    # Centred on the centroid (keeps the blurred image registered with the sharp one).
    yy, xx = torch.meshgrid(torch.arange(21).float(), torch.arange(21).float(), indexing="ij")
    assert float((k * xx).sum()) == pytest.approx(10.0, abs=0.05)
    assert float((k * yy).sum()) == pytest.approx(10.0, abs=0.05)
    # Deterministic in the generator, different across seeds.
    assert torch.equal(k, motion_kernel(21, torch.Generator().manual_seed(0), length=15.0))
    assert not torch.equal(k, motion_kernel(21, torch.Generator().manual_seed(1), length=15.0))
    with pytest.raises(ValueError):
        motion_kernel(20, torch.Generator())


def test_motion_kernel_grows_with_length() -> None:
    spreads = [
        _spread(motion_kernel(31, torch.Generator().manual_seed(3), length=L, anxiety=0.0))
        for L in (4.0, 12.0, 24.0)
    ]
    assert spreads[0] < spreads[1] < spreads[2]
    # A straight line of length L has RMS radius L/√12 (sub-pixel accurate rasterisation).
    assert spreads[2] == pytest.approx(24.0 / math.sqrt(12.0), rel=0.05)


def test_motion_blur_kernel_is_a_function_of_fields() -> None:
    a, b = MotionBlur(12.0, 1e-3, seed=7), MotionBlur(12.0, 1e-3, seed=7)
    assert a == b and hash(a) == hash(b)
    assert torch.equal(a.kernel(), b.kernel())
    assert not torch.equal(a.kernel(), MotionBlur(12.0, 1e-3, seed=8).kernel())
    assert a.kernel_size == 15 and MotionBlur(28.0).kernel_size == 31
    gen = torch.Generator().manual_seed(0)
    s1, s2 = MotionBlur.sample(0.5, gen), MotionBlur.sample(0.5, gen)
    assert s1.seed != s2.seed
    assert MotionBlur.sample(0.0, gen).length < MotionBlur.sample(1.0, gen).length


def test_apply_kernel_is_true_convolution_with_reflect_padding() -> None:
    gen = torch.Generator().manual_seed(0)
    img = torch.rand(1, 1, 20, 23, generator=gen, dtype=torch.float64)
    k = torch.rand(5, 7, generator=gen, dtype=torch.float64)
    ref = ndimage.convolve(img[0, 0].numpy(), k.numpy(), mode="mirror")
    np.testing.assert_allclose(apply_kernel(img, k)[0, 0].numpy(), ref, atol=1e-10)


def test_fft_path_matches_direct(monkeypatch: pytest.MonkeyPatch) -> None:
    x = astronaut_batch(48)
    k = motion_kernel(25, torch.Generator().manual_seed(2), length=20.0)
    fft = apply_kernel(x, k)
    monkeypatch.setattr(blur, "_FFT_MIN_TAPS", 10**9)
    assert torch.allclose(fft, apply_kernel(x, k), atol=1e-5)


def test_gaussian_is_separable_equivalent() -> None:
    x = astronaut_batch(48)
    k1 = gaussian_kernel1d(1.5)
    assert float(k1.sum()) == pytest.approx(1.0, abs=1e-6) and k1.numel() == 11
    r = torch.arange(-5, 6).float()
    assert math.sqrt(float((k1 * r**2).sum())) == pytest.approx(1.5, rel=0.02)
    expected = apply_kernel(x, torch.outer(k1, k1))
    assert torch.allclose(GaussianBlur(1.5).apply(x, torch.Generator()), expected, atol=1e-5)


def test_disk_kernel() -> None:
    k = disk_kernel(4.5)
    assert k.shape == (11, 11)
    assert float(k.sum()) == pytest.approx(1.0, abs=1e-5)
    assert torch.allclose(k, k.flip(0)) and torch.allclose(k, k.T)
    support = int((k > 0).sum())
    assert math.pi * 3.5**2 < support < math.pi * 5.5**2
    inner = k[5, 5]
    partial = k[(k > 0) & (k < inner - 1e-9)]
    assert partial.numel() > 0  # anti-aliased rim, not a binary disk


@pytest.mark.parametrize("deg", [MotionBlur(15.0, 1e-3, 3), GaussianBlur(2.0), DefocusBlur(3.0)])
def test_shape_range_constant_and_determinism(deg) -> None:
    x = astronaut_batch(48)
    y = deg(x, seed=0)
    assert y.shape == x.shape and y.dtype == torch.float32
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    assert torch.equal(y, deg(x, seed=0))
    assert psnr_db(y, x) < 35.0
    flat = torch.full((1, 3, 40, 40), 0.37)
    assert torch.allclose(deg(flat), flat, atol=1e-5)  # normalised kernel keeps the mean


@pytest.mark.parametrize("name", NAMES)
def test_numpy_inputs(name: str) -> None:
    deg = degradation_class(name).sample(0.5, torch.Generator().manual_seed(0))
    img = np.asarray(Image.fromarray(data.astronaut()).resize((48, 48)))
    out = deg(img)
    assert out.dtype == np.uint8 and out.shape == (48, 48, 3)
    out_f = deg(img.astype(np.float64) / 255.0)
    assert out_f.dtype == np.float64 and out_f.shape == (48, 48, 3)
    np.testing.assert_allclose(out_f * 255.0, out, atol=0.51)


def test_invalid_parameters() -> None:
    with pytest.raises(ValueError):
        MotionBlur(-1.0)
    with pytest.raises(ValueError):
        GaussianBlur(-0.5)
    with pytest.raises(ValueError):
        DefocusBlur(20.0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("deg", [MotionBlur(20.0, 1e-3, 1), GaussianBlur(2.0), DefocusBlur(3.0)])
def test_cuda_matches_cpu(deg) -> None:
    x = astronaut_batch(48)
    gpu = deg.apply(x.cuda(), torch.Generator())
    assert gpu.device.type == "cuda"
    assert torch.allclose(gpu.cpu(), deg.apply(x, torch.Generator()), atol=1e-4)
