"""Reading one entry of an Eet file (Enlightenment's wallpaper archives), on files built here."""

from __future__ import annotations

from pathlib import Path

import pytest

from aioir.data.eet import read_entry
from aioir.errors import AioirError
from helpers import eet_bytes


def test_reads_the_named_entry(tmp_path: Path) -> None:
    path = tmp_path / "Bg.edj"
    path.write_bytes(eet_bytes({"edje/images/1": b"small", "edje/images/0": b"\xff\xd8big"}))
    assert read_entry(path, "edje/images/0") == b"\xff\xd8big"
    assert read_entry(path, "edje/images/1") == b"small"
    with pytest.raises(AioirError, match=r"no entry 'edje/images/2'"):
        read_entry(path, "edje/images/2")


def test_refuses_what_it_cannot_read(tmp_path: Path) -> None:
    compressed = tmp_path / "c.edj"
    compressed.write_bytes(eet_bytes({"edje/images/0": b"zz"}, flags=1))
    with pytest.raises(AioirError, match="compressed or ciphered"):
        read_entry(compressed, "edje/images/0")
    other = tmp_path / "x.jpg"
    other.write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 20)
    with pytest.raises(AioirError, match=r"not an Eet \(\.edj\) file"):
        read_entry(other, "edje/images/0")
    truncated = tmp_path / "t.edj"
    truncated.write_bytes(eet_bytes({"edje/images/0": b"abc"})[:20])
    with pytest.raises(AioirError, match="truncated or malformed"):
        read_entry(truncated, "edje/images/0")
    cut = tmp_path / "cut.edj"
    cut.write_bytes(eet_bytes({"edje/images/0": b"abcdef"})[:-2])
    with pytest.raises(AioirError, match="runs past the end"):
        read_entry(cut, "edje/images/0")
    with pytest.raises(AioirError, match="cannot read"):
        read_entry(tmp_path / "missing.edj", "edje/images/0")
