"""Tests for aioir.io.png16: every filter type, Adam7, tRNS, CRC; files valid for Pillow."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aioir import io as aio
from aioir.io import png16
from io_helpers import photo, quantize16, read_error


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    pos, chunks = 8, []
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        chunks.append((data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]))
        pos += 12 + n
    return chunks


def test_16bit_rgb_png_is_valid_for_pillow(tmp_path: Path, rng: np.random.Generator) -> None:
    """Pillow (an independent decoder) reads our 48-bit PNG as its high bytes."""
    ys, xs = np.mgrid[0:12, 0:15]
    smooth = np.stack([ys * 5000, xs * 4000, ys * xs * 300], axis=2)
    samples = (smooth + rng.integers(0, 3000, smooth.shape)).astype(np.uint16)
    samples[:4] = rng.integers(0, 65536, (4, 15, 3))  # rows where "no filter" wins
    out = aio.write_image(tmp_path / "rgb48.png", samples, bit_depth=16)
    idat = b"".join(b for t, b in _png_chunks(out.read_bytes()) if t == b"IDAT")
    row_filters = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(12, -1)[:, 0]
    assert len(set(row_filters.tolist())) >= 2  # the adaptive choice is exercised
    with Image.open(out) as im:
        assert im.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(im), (samples >> 8).astype(np.uint8))


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_png16_decoder_handles_every_filter_type(
    tmp_path: Path, rng: np.random.Generator, channels: int
) -> None:
    h, w = 21, 19
    ys, xs = np.mgrid[0:h, 0:w]
    smooth = (ys * 3000 + xs * 1700)[:, :, None] + np.arange(channels) * 999
    samples = (smooth + rng.integers(0, 400, (h, w, channels))).astype(np.uint16)
    (tmp_path / "f.png").write_bytes(png16.encode_png16(samples, np.arange(h) % 5))
    data = aio.load_image(tmp_path / "f.png")
    color = samples[:, :, :3] if channels >= 3 else np.repeat(samples[:, :, :1], 3, axis=2)
    np.testing.assert_array_equal(quantize16(data.rgb), color)
    if channels in (2, 4):
        np.testing.assert_array_equal(quantize16(data.alpha), samples[:, :, -1])


def test_unfilter_matches_pillow_encoder(rng: np.random.Generator) -> None:
    """Rows filtered by Pillow/zlib's adaptive encoder decode to what Pillow wrote."""
    import io

    pixels = photo(rng, 40, 48)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    raw = zlib.decompress(b"".join(b for t, b in _png_chunks(buffer.getvalue()) if t == b"IDAT"))
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(40, 1 + 48 * 3)
    assert len(set(rows[:, 0].tolist()) - {0}) >= 2  # the test exercises real filters
    got = png16._png_unfilter(rows[:, 1:].reshape(40, 48, 3), rows[:, 0])
    np.testing.assert_array_equal(got, pixels)


def test_png16_adam7_interlaced(tmp_path: Path, rng: np.random.Generator) -> None:
    h, w = 11, 13
    samples = rng.integers(0, 65536, (h, w, 3), dtype=np.uint16)
    raw = b""
    for x0, y0, dx, dy in png16._ADAM7:
        sub = samples[y0::dy, x0::dx]
        if sub.size == 0:
            continue
        pixels = sub.astype(">u2").view(np.uint8).reshape(sub.shape[0], sub.shape[1], 6)
        raw += png16._png_filter(pixels, np.arange(sub.shape[0]) % 5).tobytes()
    png = (
        png16.PNG_SIGNATURE
        + png16._png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 1))
        + png16._png_chunk(b"IDAT", zlib.compress(raw))
        + png16._png_chunk(b"IEND", b"")
    )
    (tmp_path / "i.png").write_bytes(png)
    np.testing.assert_array_equal(quantize16(aio.read_image(tmp_path / "i.png")), samples)
    with Image.open(tmp_path / "i.png") as im:  # independent check that the file is valid
        np.testing.assert_array_equal(np.asarray(im), (samples >> 8).astype(np.uint8))


def test_png16_trns_colour_key_becomes_alpha(tmp_path: Path) -> None:
    samples = np.array([[[1, 2, 3], [4, 5, 6]]], dtype=np.uint16)
    png = png16.encode_png16(samples)
    trns = png16._png_chunk(b"tRNS", struct.pack(">3H", 4, 5, 6))
    iend = png.index(b"IEND") - 4
    (tmp_path / "t.png").write_bytes(png[:iend] + trns + png[iend:])
    data = aio.load_image(tmp_path / "t.png")
    assert data.alpha.tolist() == [[1.0, 0.0]]


def test_png16_crc_error(tmp_path: Path) -> None:
    data = bytearray(png16.encode_png16(np.zeros((4, 4, 3), dtype=np.uint16)))
    data[40] ^= 0xFF  # inside IDAT
    (tmp_path / "crc.png").write_bytes(bytes(data))
    assert "CRC" in read_error(tmp_path / "crc.png")
