"""Tests for aioir.io.tiff16: our 16-bit TIFFs and tifffile's (strips, Deflate, byte orders,
planar, tiles) read back bit-exact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aioir import io as aio
from io_helpers import quantize16


def test_16bit_tiff_cross_checked_with_tifffile(tmp_path: Path, rng: np.random.Generator) -> None:
    tifffile = pytest.importorskip("tifffile")
    samples = rng.integers(0, 65536, (10, 12, 4), dtype=np.uint16)
    out = aio.write_image(
        tmp_path / "ours.tif", samples[:, :, :3], alpha=samples[:, :, 3], bit_depth=16
    )
    np.testing.assert_array_equal(tifffile.imread(out), samples)
    for i, kwargs in enumerate(
        [
            {},
            {"compression": "zlib", "predictor": 2},
            {"byteorder": ">"},
            {"rowsperstrip": 3},
            {"tile": (16, 16)},  # not handled here: read through tifffile
        ]
    ):
        path = tmp_path / f"theirs{i}.tif"
        tifffile.imwrite(path, samples[:, :, :3], photometric="rgb", **kwargs)
        np.testing.assert_array_equal(quantize16(aio.read_image(path)), samples[:, :, :3])
    path = tmp_path / "planar.tif"
    tifffile.imwrite(
        path,
        np.moveaxis(samples, 2, 0),
        photometric="rgb",
        planarconfig="separate",
        extrasamples=[2],
    )
    data = aio.load_image(path)
    np.testing.assert_array_equal(quantize16(data.rgb), samples[:, :, :3])
    np.testing.assert_array_equal(quantize16(data.alpha), samples[:, :, 3])
