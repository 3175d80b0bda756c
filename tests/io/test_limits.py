"""Tests for aioir.io.limits: too large images are refused before decoding, by every decoder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aioir import io as aio
from aioir.io import limits
from io_helpers import read_error


def test_too_large_image_refused_and_pillow_limit_restored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    aio.write_image(tmp_path / "a.png", np.zeros((8, 8, 3)))
    aio.write_image(tmp_path / "b.png", np.zeros((8, 8, 3)), bit_depth=16)
    before = Image.MAX_IMAGE_PIXELS
    monkeypatch.setattr(limits, "MAX_PIXELS", 63)
    assert "too large" in read_error(tmp_path / "a.png")
    assert "too large" in read_error(tmp_path / "b.png")
    assert before == Image.MAX_IMAGE_PIXELS
