"""Tests for aioir.io.atomic: no overwrite without asking, no partial or temporary file left."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from aioir import io as aio
from aioir.errors import ImageWriteError
from io_helpers import one_line_error


def test_existing_output_not_overwritten(tmp_path: Path) -> None:
    target = tmp_path / "out.png"
    target.write_bytes(b"precious")
    with pytest.raises(ImageWriteError) as exc:
        aio.write_image(target, np.zeros((2, 2, 3)))
    assert "exists; pass overwrite=True" in one_line_error(exc, "out.png")
    assert target.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]
    aio.write_image(target, np.ones((2, 2, 3)), overwrite=True)
    assert aio.read_image(target).min() == 1.0


def test_failed_write_leaves_no_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(ImageWriteError) as exc:
        aio.write_image(tmp_path / "sub" / "out.png", np.zeros((2, 2, 3)))
    assert "No space left" in one_line_error(exc, "out.png")
    assert list((tmp_path / "sub").iterdir()) == []
