"""Tests for aioir.io: formats, bit depth, alpha, grayscale, orientation, errors, atomic writes."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from aioir import io as aio
from aioir.errors import ImageReadError, ImageWriteError


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def _u16(rgb: np.ndarray) -> np.ndarray:
    return aio._quantize(rgb, 16)


def _photo(rng: np.random.Generator, h: int = 24, w: int = 32) -> np.ndarray:
    """Smooth-ish uint8 RGB content with some noise."""
    ys, xs = np.mgrid[0:h, 0:w]
    base = np.stack([ys * 255 // max(h - 1, 1), xs * 255 // max(w - 1, 1), (xs + ys) % 256], axis=2)
    return np.clip(base + rng.integers(-8, 9, base.shape), 0, 255).astype(np.uint8)


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    pos, chunks = 8, []
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        chunks.append((data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]))
        pos += 12 + n
    return chunks


def _one_line_error(exc: pytest.ExceptionInfo[BaseException], name: str) -> str:
    message = str(exc.value)
    assert "\n" not in message
    assert name in message
    return message


# ----- round trips ----------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif", ".tiff", ".webp", ".PNG"])
def test_lossless_round_trip(tmp_path: Path, rng: np.random.Generator, suffix: str) -> None:
    pixels = _photo(rng)
    out = aio.write_image(tmp_path / f"a{suffix}", pixels)
    data = aio.load_image(out)
    assert data.rgb.dtype == np.float32 and data.rgb.shape == (24, 32, 3)
    assert data.bit_depth == 8 and not data.grayscale and data.alpha is None
    assert data.path == out
    np.testing.assert_array_equal(aio.to_uint8(data.rgb), pixels)
    np.testing.assert_array_equal(np.asarray(Image.open(out).convert("RGB")), pixels)


@pytest.mark.parametrize("suffix", [".jpg", ".jpeg", ".JPG"])
def test_jpeg_round_trip_is_close(tmp_path: Path, rng: np.random.Generator, suffix: str) -> None:
    pixels = _photo(rng)
    out = aio.write_image(tmp_path / f"a{suffix}", aio.to_float(pixels))
    with Image.open(out) as im:
        assert im.format == "JPEG"
    rgb = aio.read_image(out)
    assert np.abs(rgb - aio.to_float(pixels)).mean() < 3 / 255


@pytest.mark.parametrize("suffix", sorted(aio.SUPPORTED_SUFFIXES))
def test_one_by_one_image(tmp_path: Path, suffix: str) -> None:
    pixel = np.array([[[200, 30, 90]]], dtype=np.uint8)
    data = aio.load_image(aio.write_image(tmp_path / f"p{suffix}", pixel))
    assert data.rgb.shape == (1, 1, 3)
    tol = 6 if suffix in (".jpg", ".jpeg") else 0
    assert np.abs(aio.to_uint8(data.rgb).astype(int) - pixel).max() <= tol


def test_write_accepts_float_uint8_uint16_and_clips(tmp_path: Path) -> None:
    f = np.array([[[-0.5, 0.5, 2.0]]], dtype=np.float32)
    assert aio.to_uint8(aio.read_image(aio.write_image(tmp_path / "f.png", f))).tolist() == [
        [[0, 128, 255]]
    ]
    u16 = np.array([[[0, 257 * 10, 65535]]], dtype=np.uint16)
    got = aio.to_uint8(aio.read_image(aio.write_image(tmp_path / "u.png", u16)))
    assert got.tolist() == [[[0, 10, 255]]]
    with pytest.raises(ImageWriteError, match="shape"):
        aio.write_image(tmp_path / "bad.png", np.zeros((4, 4, 5)))


def test_conversions() -> None:
    u8 = np.array([0, 1, 128, 255], dtype=np.uint8)
    assert aio.to_float(u8).dtype == np.float32
    np.testing.assert_array_equal(aio.to_uint8(aio.to_float(u8)), u8)
    u16 = np.arange(0, 65536, 7, dtype=np.uint16)
    np.testing.assert_array_equal(_u16(aio.to_float(u16)), u16)
    assert aio.to_uint8(np.array([-1.0, 0.499 / 255, 0.501 / 255, 3.0])).tolist() == [0, 0, 1, 255]
    assert aio.to_uint8(np.array([257, 65535], dtype=np.uint16)).tolist() == [1, 255]
    with pytest.raises(TypeError):
        aio.to_float(np.array([1], dtype=np.int64))


# ----- 16-bit ----------------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16bit_round_trip_is_bit_exact(
    tmp_path: Path, rng: np.random.Generator, channels: int, suffix: str
) -> None:
    samples = rng.integers(0, 65536, (13, 17, channels), dtype=np.uint16)
    rgb = samples[:, :, 0] if channels == 1 else samples[:, :, :3]
    alpha = samples[:, :, 3] if channels == 4 else None
    out = aio.write_image(tmp_path / f"d{suffix}", rgb, alpha=alpha, bit_depth=16)
    data = aio.load_image(out)
    assert data.bit_depth == 16 and data.grayscale == (channels == 1)
    expected = np.repeat(samples[:, :, :1], 3, axis=2) if channels == 1 else samples[:, :, :3]
    np.testing.assert_array_equal(_u16(data.rgb), expected)
    if channels == 4:
        np.testing.assert_array_equal(_u16(data.alpha), samples[:, :, 3])
    else:
        assert data.alpha is None
    # and written back alike
    again = aio.load_image(aio.save_image(tmp_path / f"e{suffix}", data))
    np.testing.assert_array_equal(_u16(again.rgb), _u16(data.rgb))
    assert again.bit_depth == 16 and again.grayscale == data.grayscale


def test_16bit_gray_files_are_mode_i16_for_pillow(tmp_path: Path, rng: np.random.Generator) -> None:
    gray = rng.integers(0, 65536, (9, 11), dtype=np.uint16)
    for suffix in (".png", ".tif"):
        out = aio.write_image(tmp_path / f"g{suffix}", gray, bit_depth=16)
        with Image.open(out) as im:
            assert im.mode.startswith("I;16")
            np.testing.assert_array_equal(np.asarray(im), gray)


def test_16bit_gray_png_from_pillow_keeps_precision(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    gray = rng.integers(0, 65536, (10, 14), dtype=np.uint16)
    Image.fromarray(gray).save(tmp_path / "g.png")
    Image.fromarray(gray).save(tmp_path / "g.tif")
    for name in ("g.png", "g.tif"):
        data = aio.load_image(tmp_path / name)
        assert data.bit_depth == 16 and data.grayscale
        np.testing.assert_array_equal(_u16(data.rgb[:, :, 1]), gray)


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
    (tmp_path / "f.png").write_bytes(aio._encode_png16(samples, np.arange(h) % 5))
    data = aio.load_image(tmp_path / "f.png")
    color = samples[:, :, :3] if channels >= 3 else np.repeat(samples[:, :, :1], 3, axis=2)
    np.testing.assert_array_equal(_u16(data.rgb), color)
    if channels in (2, 4):
        np.testing.assert_array_equal(_u16(data.alpha), samples[:, :, -1])


def test_unfilter_matches_pillow_encoder(rng: np.random.Generator) -> None:
    """Rows filtered by Pillow/zlib's adaptive encoder decode to what Pillow wrote."""
    import io

    pixels = _photo(rng, 40, 48)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    raw = zlib.decompress(b"".join(b for t, b in _png_chunks(buffer.getvalue()) if t == b"IDAT"))
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(40, 1 + 48 * 3)
    assert len(set(rows[:, 0].tolist()) - {0}) >= 2  # the test exercises real filters
    got = aio._png_unfilter(rows[:, 1:].reshape(40, 48, 3), rows[:, 0])
    np.testing.assert_array_equal(got, pixels)


def test_png16_adam7_interlaced(tmp_path: Path, rng: np.random.Generator) -> None:
    h, w = 11, 13
    samples = rng.integers(0, 65536, (h, w, 3), dtype=np.uint16)
    raw = b""
    for x0, y0, dx, dy in aio._ADAM7:
        sub = samples[y0::dy, x0::dx]
        if sub.size == 0:
            continue
        pixels = sub.astype(">u2").view(np.uint8).reshape(sub.shape[0], sub.shape[1], 6)
        raw += aio._png_filter(pixels, np.arange(sub.shape[0]) % 5).tobytes()
    png = (
        aio._PNG_SIGNATURE
        + aio._png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 1))
        + aio._png_chunk(b"IDAT", zlib.compress(raw))
        + aio._png_chunk(b"IEND", b"")
    )
    (tmp_path / "i.png").write_bytes(png)
    np.testing.assert_array_equal(_u16(aio.read_image(tmp_path / "i.png")), samples)
    with Image.open(tmp_path / "i.png") as im:  # independent check that the file is valid
        np.testing.assert_array_equal(np.asarray(im), (samples >> 8).astype(np.uint8))


def test_png16_trns_colour_key_becomes_alpha(tmp_path: Path) -> None:
    samples = np.array([[[1, 2, 3], [4, 5, 6]]], dtype=np.uint16)
    png = aio._encode_png16(samples)
    trns = aio._png_chunk(b"tRNS", struct.pack(">3H", 4, 5, 6))
    iend = png.index(b"IEND") - 4
    (tmp_path / "t.png").write_bytes(png[:iend] + trns + png[iend:])
    data = aio.load_image(tmp_path / "t.png")
    assert data.alpha.tolist() == [[1.0, 0.0]]


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
        np.testing.assert_array_equal(_u16(aio.read_image(path)), samples[:, :, :3])
    path = tmp_path / "planar.tif"
    tifffile.imwrite(
        path,
        np.moveaxis(samples, 2, 0),
        photometric="rgb",
        planarconfig="separate",
        extrasamples=[2],
    )
    data = aio.load_image(path)
    np.testing.assert_array_equal(_u16(data.rgb), samples[:, :, :3])
    np.testing.assert_array_equal(_u16(data.alpha), samples[:, :, 3])


def test_16bit_only_for_png_and_tiff(tmp_path: Path) -> None:
    for name in ("a.jpg", "a.webp", "a.bmp"):
        with pytest.raises(ImageWriteError) as exc:
            aio.write_image(tmp_path / name, np.zeros((2, 2, 3)), bit_depth=16)
        _one_line_error(exc, name)
    assert list(tmp_path.iterdir()) == []


# ----- grayscale, alpha, palette, CMYK ------------------------------------------------------------


def test_grayscale_in_three_channels_out_and_written_back_as_l(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    gray = rng.integers(0, 256, (8, 10), dtype=np.uint8)
    Image.fromarray(gray).save(tmp_path / "g.png")
    data = aio.load_image(tmp_path / "g.png")
    assert data.grayscale and data.bit_depth == 8 and data.rgb.shape == (8, 10, 3)
    for c in range(3):
        np.testing.assert_array_equal(aio.to_uint8(data.rgb[:, :, c]), gray)
    for suffix in (".png", ".jpg", ".tif", ".bmp"):
        out = aio.save_image(tmp_path / f"back{suffix}", data)
        with Image.open(out) as im:
            assert im.mode == "L"
            if suffix != ".jpg":
                np.testing.assert_array_equal(np.asarray(im), gray)


def test_grayscale_write_uses_bt601_luma(tmp_path: Path) -> None:
    rgb = np.array([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]])
    out = aio.write_image(tmp_path / "l.png", rgb, grayscale=True)
    with Image.open(out) as im:
        assert im.mode == "L"
        assert np.asarray(im).tolist() == [[76, 150, 29]]


def test_one_bit_image_is_grayscale(tmp_path: Path) -> None:
    bits = np.array([[True, False], [False, True]])
    Image.fromarray(bits).save(tmp_path / "b.png")
    data = aio.load_image(tmp_path / "b.png")
    assert data.grayscale and data.rgb[:, :, 0].tolist() == [[1.0, 0.0], [0.0, 1.0]]


@pytest.mark.parametrize("suffix", [".png", ".tif", ".webp"])
def test_rgba_alpha_carried_untouched(
    tmp_path: Path, rng: np.random.Generator, suffix: str
) -> None:
    rgba = rng.integers(0, 256, (9, 7, 4), dtype=np.uint8)
    rgba[0, 0, 3] = 0  # fully transparent pixel keeps its colour
    Image.fromarray(rgba).save(
        tmp_path / f"src{suffix}",
        **({"lossless": True, "exact": True} if suffix == ".webp" else {}),
    )
    data = aio.load_image(tmp_path / f"src{suffix}")
    np.testing.assert_array_equal(aio.to_uint8(data.alpha), rgba[:, :, 3])
    np.testing.assert_array_equal(aio.to_uint8(data.rgb), rgba[:, :, :3])
    out = aio.save_image(tmp_path / f"out{suffix}", data, rgb=1.0 - data.rgb)
    with Image.open(out) as im:
        back = np.asarray(im.convert("RGBA"))
    np.testing.assert_array_equal(back[:, :, 3], rgba[:, :, 3])
    np.testing.assert_array_equal(back[:, :, :3], 255 - rgba[:, :, :3])


def test_gray_alpha_stays_gray_alpha(tmp_path: Path, rng: np.random.Generator) -> None:
    la = rng.integers(0, 256, (5, 6, 2), dtype=np.uint8)
    Image.fromarray(la).save(tmp_path / "la.png")
    data = aio.load_image(tmp_path / "la.png")
    assert data.grayscale
    np.testing.assert_array_equal(aio.to_uint8(data.alpha), la[:, :, 1])
    with Image.open(aio.save_image(tmp_path / "out.png", data)) as im:
        assert im.mode == "LA"
        np.testing.assert_array_equal(np.asarray(im), la)


def test_alpha_refused_by_jpeg_and_bmp_but_dropped_by_save_image(tmp_path: Path) -> None:
    rgb, alpha = np.zeros((3, 3, 3)), np.ones((3, 3))
    with pytest.raises(ImageWriteError, match="alpha"):
        aio.write_image(tmp_path / "a.jpg", rgb, alpha=alpha)
    like = aio.ImageData(
        rgb=rgb.astype(np.float32), alpha=alpha, bit_depth=16, grayscale=False, path=None
    )
    with Image.open(aio.save_image(tmp_path / "b.jpg", like)) as im:
        assert im.mode == "RGB"


def test_palette_images_converted(tmp_path: Path, rng: np.random.Generator) -> None:
    pixels = _photo(rng, 8, 8)
    pal = Image.fromarray(pixels).quantize(16)
    pal.save(tmp_path / "p.png")
    data = aio.load_image(tmp_path / "p.png")
    assert data.alpha is None and not data.grayscale
    np.testing.assert_array_equal(aio.to_uint8(data.rgb), np.asarray(pal.convert("RGB")))
    pal.save(tmp_path / "pt.png", transparency=3)
    data = aio.load_image(tmp_path / "pt.png")
    index = np.asarray(pal)
    np.testing.assert_array_equal(aio.to_uint8(data.alpha), np.where(index == 3, 0, 255))
    pal.save(tmp_path / "p.bmp")
    assert aio.read_image(tmp_path / "p.bmp").shape == (8, 8, 3)


def test_cmyk_jpeg_converted(tmp_path: Path, rng: np.random.Generator) -> None:
    cmyk = Image.fromarray(_photo(rng)).convert("CMYK")
    cmyk.save(tmp_path / "c.jpg", quality=95)
    data = aio.load_image(tmp_path / "c.jpg")
    assert data.rgb.shape == (24, 32, 3) and not data.grayscale
    with Image.open(tmp_path / "c.jpg") as im:
        assert im.mode == "CMYK"
        expected = np.asarray(im.convert("RGB"))
    np.testing.assert_array_equal(aio.to_uint8(data.rgb), expected)


# ----- orientation --------------------------------------------------------------------------------


def _blocks() -> np.ndarray:
    """A 16×24 image of four flat, distinct blocks (JPEG keeps them)."""
    img = np.zeros((16, 24, 3), dtype=np.uint8)
    img[:8, :16] = (250, 0, 0)
    img[:8, 16:] = (0, 250, 0)
    img[8:, :8] = (0, 0, 250)
    img[8:, 8:] = (250, 250, 250)
    return img


@pytest.mark.parametrize(("orientation", "k"), [(6, -1), (3, 2)])
def test_exif_rotated_jpeg_comes_out_displayed(tmp_path: Path, orientation: int, k: int) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(_blocks()).save(tmp_path / "r.jpg", exif=exif, quality=95, subsampling=0)
    rgb = aio.to_uint8(aio.read_image(tmp_path / "r.jpg")).astype(int)
    expected = np.rot90(_blocks(), k=k).astype(int)
    assert rgb.shape == expected.shape
    assert np.abs(rgb - expected).mean() < 4
    wrong = np.rot90(_blocks(), k=k + 2).astype(int)  # same shape, other way round
    assert np.abs(rgb - wrong).mean() > 40


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_matches_pillow_exif_transpose(
    tmp_path: Path, rng: np.random.Generator, orientation: int
) -> None:
    rgba = rng.integers(0, 256, (5, 7, 4), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(rgba).save(tmp_path / "o.png", exif=exif)
    data = aio.load_image(tmp_path / "o.png")
    with Image.open(tmp_path / "o.png") as im:
        expected = np.asarray(ImageOps.exif_transpose(im))
    np.testing.assert_array_equal(aio.to_uint8(data.rgb), expected[:, :, :3])
    np.testing.assert_array_equal(aio.to_uint8(data.alpha), expected[:, :, 3])


# ----- bad files -----------------------------------------------------------------------------


def _read_error(path: Path) -> str:
    with pytest.raises(ImageReadError) as exc:
        aio.load_image(path)
    return _one_line_error(exc, path.name)


def test_bad_files_raise_one_line_image_read_error(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    (tmp_path / "photo.jpg").write_bytes(b"")
    assert "file is empty" in _read_error(tmp_path / "photo.jpg")
    (tmp_path / "notes.jpg").write_text("shopping list\n")
    assert "not an image file" in _read_error(tmp_path / "notes.jpg")
    assert "no such file" in _read_error(tmp_path / "missing.png")
    (tmp_path / "folder.png").mkdir()
    assert "directory" in _read_error(tmp_path / "folder.png")
    (tmp_path / "anim.gif").write_bytes(b"GIF89a")
    assert "unsupported file type" in _read_error(tmp_path / "anim.gif")
    Image.new("RGB", (4, 4)).save(tmp_path / "real.gif")
    (tmp_path / "gif.png").write_bytes((tmp_path / "real.gif").read_bytes())
    assert "not an image file" in _read_error(tmp_path / "gif.png")


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".tif"])
def test_truncated_files_raise(tmp_path: Path, rng: np.random.Generator, suffix: str) -> None:
    full = aio.write_image(
        tmp_path / f"full{suffix}", rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    )
    data = full.read_bytes()
    (tmp_path / f"x{suffix}").write_bytes(data[: len(data) // 2])
    message = _read_error(tmp_path / f"x{suffix}")
    assert "truncated" in message or "corrupt" in message


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_truncated_16bit_files_raise(tmp_path: Path, rng: np.random.Generator, suffix: str) -> None:
    full = aio.write_image(
        tmp_path / f"full{suffix}",
        rng.integers(0, 65536, (32, 32, 3), dtype=np.uint16),
        bit_depth=16,
    )
    data = full.read_bytes()
    (tmp_path / f"x{suffix}").write_bytes(data[: len(data) // 2])
    assert "truncated" in _read_error(tmp_path / f"x{suffix}")


def test_png16_crc_error(tmp_path: Path) -> None:
    data = bytearray(aio._encode_png16(np.zeros((4, 4, 3), dtype=np.uint16)))
    data[40] ^= 0xFF  # inside IDAT
    (tmp_path / "crc.png").write_bytes(bytes(data))
    assert "CRC" in _read_error(tmp_path / "crc.png")


def test_too_large_image_refused_and_pillow_limit_restored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    aio.write_image(tmp_path / "a.png", np.zeros((8, 8, 3)))
    aio.write_image(tmp_path / "b.png", np.zeros((8, 8, 3)), bit_depth=16)
    before = Image.MAX_IMAGE_PIXELS
    monkeypatch.setattr(aio, "MAX_PIXELS", 63)
    assert "too large" in _read_error(tmp_path / "a.png")
    assert "too large" in _read_error(tmp_path / "b.png")
    assert before == Image.MAX_IMAGE_PIXELS


# ----- writing -------------------------------------------------------------------------------


def test_existing_output_not_overwritten(tmp_path: Path) -> None:
    target = tmp_path / "out.png"
    target.write_bytes(b"precious")
    with pytest.raises(ImageWriteError) as exc:
        aio.write_image(target, np.zeros((2, 2, 3)))
    assert "exists; pass overwrite=True" in _one_line_error(exc, "out.png")
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
    assert "No space left" in _one_line_error(exc, "out.png")
    assert list((tmp_path / "sub").iterdir()) == []


def test_write_creates_parents_and_rejects_bad_targets(tmp_path: Path) -> None:
    out = aio.write_image(tmp_path / "a" / "b" / "c.webp", np.zeros((3, 3, 3)))
    assert out.is_file()
    with pytest.raises(ImageWriteError, match="unsupported"):
        aio.write_image(tmp_path / "x.gif", np.zeros((3, 3, 3)))
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(ImageWriteError, match="directory"):
        aio.write_image(tmp_path / "dir.png", np.zeros((3, 3, 3)), overwrite=True)


# ----- listing -------------------------------------------------------------------------------


def test_is_image_file_and_list_images(tmp_path: Path) -> None:
    assert aio.is_image_file("a/B.JPEG") and not aio.is_image_file("a.gif")
    for name in ("b.PNG", "a.jpg", "c.txt", ".hidden.png", "._a.jpg", "sub/d.tif", ".git/e.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "folder.png").mkdir()
    assert [p.name for p in aio.list_images(tmp_path)] == ["a.jpg", "b.PNG"]
    found = aio.list_images(tmp_path, recursive=True)
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["a.jpg", "b.PNG", "sub/d.tif"]
    with pytest.raises(ImageReadError, match="not a folder"):
        aio.list_images(tmp_path / "a.jpg")
