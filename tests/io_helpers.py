"""Helpers shared by the tests of :mod:`aioir.io` (importable: ``pythonpath = ["tests"]``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aioir import io as aio
from aioir.errors import ImageReadError
from aioir.io.images import _quantize


def quantize16(rgb: np.ndarray) -> np.ndarray:
    """uint16 samples of a float (or uint8/uint16) image, rounded as the 16-bit writers do."""
    return _quantize(rgb, 16)


def photo(rng: np.random.Generator, h: int = 24, w: int = 32) -> np.ndarray:
    """Smooth-ish uint8 RGB content with some noise."""
    ys, xs = np.mgrid[0:h, 0:w]
    base = np.stack([ys * 255 // max(h - 1, 1), xs * 255 // max(w - 1, 1), (xs + ys) % 256], axis=2)
    return np.clip(base + rng.integers(-8, 9, base.shape), 0, 255).astype(np.uint8)


def one_line_error(exc: pytest.ExceptionInfo[BaseException], name: str) -> str:
    message = str(exc.value)
    assert "\n" not in message
    assert name in message
    return message


def read_error(path: Path) -> str:
    with pytest.raises(ImageReadError) as exc:
        aio.load_image(path)
    return one_line_error(exc, path.name)
