"""Tests for aioir.degradations.rain: synthetic rain streaks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aioir.degradations import degradation_class
from aioir.degradations.rain import RainStreaks, streak_kernel
from helpers import astronaut_batch


def test_registered() -> None:
    assert degradation_class("rain") is RainStreaks
    assert RainStreaks.task == "rain"
    assert hash(RainStreaks()) == hash(RainStreaks())


def test_shape_range_determinism() -> None:
    x = astronaut_batch(64)
    d = RainStreaks.sample(0.6, torch.Generator().manual_seed(0))
    a = d.apply(x, torch.Generator().manual_seed(1))
    b = d.apply(x, torch.Generator().manual_seed(1))
    c = d.apply(x, torch.Generator().manual_seed(2))
    assert a.shape == x.shape and a.dtype == x.dtype
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    # the two images of the batch get different rain
    assert not torch.allclose(a[0] - x[0], (a[1] - x[1]).flip(-1))


def test_streaks_only_brighten_without_veil() -> None:
    x = astronaut_batch(64)
    d = RainStreaks(angle=15.0, density=0.01, length=15.0, width=1.5, brightness=0.9, layers=2)
    y = d.apply(x, torch.Generator().manual_seed(0))
    assert bool((y >= x - 1e-6).all())
    assert float((y - x).amax()) > 0.3  # some streak is clearly visible
    # grey streaks: on a flat grey image every channel gets the same light
    g = d.apply(torch.full((1, 3, 32, 32), 0.3), torch.Generator().manual_seed(0))
    assert torch.allclose(g[:, 0], g[:, 1]) and torch.allclose(g[:, 1], g[:, 2])
    assert float(g.max()) > 0.5


def test_kernel_orientation_and_peak() -> None:
    k = streak_kernel(0.0, 15.0, 1.5)
    c = k.shape[-1] // 2
    assert abs(float(k.max()) - 1.0) < 0.1
    assert float(k[:, c].sum()) > 5 * float(k[c, :].sum())  # vertical streak
    k45 = streak_kernel(45.0, 15.0, 1.5)
    diag = torch.diagonal(k45).sum()  # positive angle: top-left to bottom-right
    assert float(diag) > 3 * float(torch.diagonal(k45.flip(-1)).sum())


def test_call_numpy_roundtrip() -> None:
    img = (np.random.default_rng(0).random((40, 48, 3)) * 255).astype(np.uint8)
    out = RainStreaks()(img, seed=3)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert np.array_equal(out, RainStreaks()(img, seed=3))


@pytest.mark.parametrize(
    "kwargs",
    [{"density": -0.1}, {"length": 0.5}, {"brightness": 1.5}, {"layers": 3}, {"veil": 2.0}],
)
def test_invalid_parameters(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        RainStreaks(**kwargs)
