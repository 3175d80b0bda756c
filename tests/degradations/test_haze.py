"""Tests for aioir.degradations.haze: atmospheric scattering model and synthetic depth."""

from __future__ import annotations

import pytest
import torch

from aioir.degradations import degradation_class
from aioir.degradations.haze import Haze, synthetic_depth
from helpers import astronaut_batch


def test_registered() -> None:
    assert degradation_class("haze") is Haze
    assert Haze.task == "haze"


def test_follows_scattering_model_for_given_depth() -> None:
    x = astronaut_batch(64)
    depth = torch.linspace(0.5, 12.0, 64).view(64, 1).expand(64, 64)
    d = Haze(beta=0.15, airlight=0.85, tint=(1.02, 1.0, 0.97), depth_map=depth)
    y = d.apply(x, torch.Generator().manual_seed(0))
    t = torch.exp(-0.15 * depth)[None, None]
    a = torch.tensor([0.85 * 1.02, 0.85, 0.85 * 0.97]).view(1, 3, 1, 1)
    assert torch.allclose(y, (x * t + a * (1 - t)).clamp(0, 1), atol=1e-6)
    # batched B×1×H×W depth maps work too
    y2 = d.__class__(
        beta=0.15, airlight=0.85, tint=(1.02, 1.0, 0.97), depth_map=depth.expand(2, 1, 64, 64)
    ).apply(x, torch.Generator())
    assert torch.allclose(y, y2)


def test_beta_zero_is_identity() -> None:
    x = astronaut_batch(64)
    assert torch.equal(Haze(beta=0.0).apply(x, torch.Generator().manual_seed(0)), x)
    depth = torch.full((64, 64), 5.0)
    assert torch.equal(Haze(beta=0.0, depth_map=depth).apply(x, torch.Generator()), x)


def test_shape_range_determinism() -> None:
    x = astronaut_batch(64)
    d = Haze.sample(0.5, torch.Generator().manual_seed(0))
    a = d.apply(x, torch.Generator().manual_seed(1))
    assert a.shape == x.shape
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert torch.equal(a, d.apply(x, torch.Generator().manual_seed(1)))
    assert not torch.equal(a, d.apply(x, torch.Generator().manual_seed(2)))
    assert 0.04 * 0.9 <= d.beta <= 0.2 and 0.7 <= d.airlight <= 1.0


def test_haze_reduces_contrast_toward_airlight() -> None:
    x = astronaut_batch(64)
    y = Haze(beta=0.2, airlight=0.9).apply(x, torch.Generator().manual_seed(0))
    assert float(y.std()) < float(x.std())
    assert float((y - 0.9).abs().mean()) < float((x - 0.9).abs().mean())


def test_synthetic_depth_far_at_top() -> None:
    x = torch.full((3, 3, 48, 64), 0.5)
    d = synthetic_depth(x, torch.Generator().manual_seed(0))
    assert d.shape == (3, 1, 48, 64)
    assert float(d.min()) >= 0.0 and float(d.max()) <= 1.0
    assert bool((d[..., :8, :].mean(dim=(1, 2, 3)) > d[..., -8:, :].mean(dim=(1, 2, 3))).all())
    # smooth: neighbouring pixels differ little
    assert float((d[..., 1:, :] - d[..., :-1, :]).abs().max()) < 0.1


def test_depth_map_excluded_from_eq_hash_and_params() -> None:
    a = Haze(beta=0.1, depth_map=torch.ones(8, 8))
    b = Haze(beta=0.1, depth_map=torch.zeros(8, 8))
    assert a == b and hash(a) == hash(b)
    assert a.params()["depth_map"] == "given"
    assert Haze().params()["depth_map"] is None
    assert "beta" in a.params()


def test_bad_depth_shape_and_params() -> None:
    with pytest.raises(ValueError):
        Haze(depth_map=torch.ones(10, 10)).apply(astronaut_batch(64), torch.Generator())
    with pytest.raises(ValueError):
        Haze(beta=-1.0)
    with pytest.raises(ValueError):
        Haze(airlight=1.5)
