"""Tests for aioir.degradations.jpeg: real Pillow JPEG round trips."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aioir.degradations import degradation_class
from aioir.degradations.jpeg import JPEGCompression, jpeg_roundtrip
from helpers import TIER_MIDPOINTS, astronaut_u8


def _batch() -> torch.Tensor:
    x = torch.from_numpy(astronaut_u8(48)).permute(2, 0, 1).float() / 255.0
    return torch.stack([x, x.flip(-1)])


def test_registry() -> None:
    assert degradation_class("jpeg") is JPEGCompression
    assert JPEGCompression.task == "jpeg"
    assert JPEGCompression(30).params() == {"name": "jpeg", "quality": 30}


def test_shape_range_levels_and_determinism() -> None:
    x = _batch()
    deg = JPEGCompression(30)
    a = deg(x, seed=0)
    assert a.shape == x.shape and a.dtype == torch.float32
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert torch.allclose(a * 255.0, torch.round(a * 255.0), atol=1e-4)  # uint8 levels
    assert torch.equal(a, deg(x, seed=123))  # deterministic: the generator is not used
    assert not torch.equal(a, x)


def test_matches_pillow_420() -> None:
    img = astronaut_u8(48)
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255.0
    out = JPEGCompression(40).apply(x, torch.Generator())
    out_u8 = (out[0].permute(1, 2, 0) * 255.0).round().to(torch.uint8).numpy()
    np.testing.assert_array_equal(out_u8, jpeg_roundtrip(img, 40, subsampling=2))
    # 4:2:0 chroma subsampling really is used (4:4:4 gives a different decode).
    assert not np.array_equal(out_u8, jpeg_roundtrip(img, 40, subsampling=0))


def test_numpy_inputs() -> None:
    img = astronaut_u8(48)
    out = JPEGCompression(20)(img)
    assert out.dtype == np.uint8 and out.shape == img.shape
    np.testing.assert_array_equal(out, jpeg_roundtrip(img, 20))
    out_f = JPEGCompression(20)(img.astype(np.float32) / 255.0)
    assert out_f.dtype == np.float32
    np.testing.assert_allclose(out_f * 255.0, out, atol=1e-3)


def test_quality_falls_with_severity() -> None:
    # the PSNR ordering of the tiers is checked with every degradation in test_severity.py
    gen = torch.Generator().manual_seed(0)
    qualities = [JPEGCompression.sample(s, gen).quality for s in TIER_MIDPOINTS]
    assert qualities[0] > qualities[1] > qualities[2] and 10 <= qualities[2] <= 95
    assert JPEGCompression.sample(0.0, gen).quality == 95
    assert JPEGCompression.sample(1.0, gen).quality == 10


@pytest.mark.parametrize("quality", [0, 101, 50.5])
def test_invalid_quality(quality) -> None:
    with pytest.raises(ValueError):
        JPEGCompression(quality)
