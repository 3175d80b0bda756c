"""Tests for aioir.degradations.underwater: Jerlov-type attenuation and backscatter."""

from __future__ import annotations

import pytest
import torch

from aioir.degradations import degradation_class
from aioir.degradations.underwater import (
    JERLOV_KD,
    SAMPLED_WATER_TYPES,
    UnderwaterCast,
    residual_energy_ratio,
)
from helpers import astronaut_batch


def test_registered() -> None:
    assert degradation_class("underwater") is UnderwaterCast
    assert UnderwaterCast.task == "underwater"


def test_ocean_types_attenuate_red_fastest() -> None:
    for wt in ("I", "IA", "IB", "II", "III"):
        r, g, b = residual_energy_ratio(wt)
        assert r < g and r < b
    for wt in SAMPLED_WATER_TYPES:
        r, _, b = residual_energy_ratio(wt)
        assert r < b
    assert set(SAMPLED_WATER_TYPES) <= set(JERLOV_KD)


def test_red_attenuated_more_than_blue() -> None:
    x = astronaut_batch(64)
    d = UnderwaterCast(water_type="II", distance=4.0, surface_depth=1.0, background=(0, 0, 0))
    y = d.apply(x, torch.Generator().manual_seed(0))
    ratio = y.mean(dim=(0, 2, 3)) / x.mean(dim=(0, 2, 3))
    assert float(ratio[0]) < float(ratio[2]) - 0.2
    # with veiling light the result is blue-green: blue and green exceed red on average
    y2 = UnderwaterCast(water_type="II", distance=4.0).apply(x, torch.Generator().manual_seed(0))
    m = y2.mean(dim=(0, 2, 3))
    assert float(m[0]) < float(m[1]) and float(m[0]) < float(m[2])


def test_follows_model_for_given_depth() -> None:
    x = astronaut_batch(64)
    depth = torch.linspace(1.0, 6.0, 64).view(1, 64).expand(64, 64)
    bl = (0.1, 0.5, 0.6)
    d = UnderwaterCast(water_type="IB", surface_depth=2.0, background=bl, depth_map=depth)
    y = d.apply(x, torch.Generator())
    n = torch.tensor(residual_energy_ratio("IB")).view(1, 3, 1, 1)
    t = n ** depth[None, None]
    expect = x * n**2.0 * t + torch.tensor(bl).view(1, 3, 1, 1) * (1 - t)
    assert torch.allclose(y, expect.clamp(0, 1), atol=1e-5)


def test_zero_distance_is_identity() -> None:
    x = astronaut_batch(64)
    y = UnderwaterCast(distance=0.0, surface_depth=0.0).apply(x, torch.Generator())
    assert torch.allclose(y, x, atol=1e-6)


def test_shape_range_determinism() -> None:
    x = astronaut_batch(64)
    d = UnderwaterCast.sample(0.5, torch.Generator().manual_seed(0))
    a = d.apply(x, torch.Generator().manual_seed(1))
    assert a.shape == x.shape
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert torch.equal(a, d.apply(x, torch.Generator().manual_seed(1)))
    assert d.water_type in SAMPLED_WATER_TYPES


def test_invalid_parameters() -> None:
    with pytest.raises(ValueError):
        UnderwaterCast(water_type="X")
    with pytest.raises(ValueError):
        UnderwaterCast(distance=-1.0)
    with pytest.raises(ValueError):
        UnderwaterCast(background=(0.1, 2.0, 0.3))
