"""Tests for aioir.io.images: formats, bit depth, alpha, grayscale, orientation, errors, listing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from aioir import io as aio
from aioir.errors import ImageReadError, ImageWriteError
from io_helpers import one_line_error, photo, quantize16, read_error

# ----- round trips --------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif", ".tiff", ".webp", ".PNG"])
def test_lossless_round_trip(tmp_path: Path, rng: np.random.Generator, suffix: str) -> None:
    pixels = photo(rng)
    out = aio.write_image(tmp_path / f"a{suffix}", pixels)
    data = aio.load_image(out)
    assert data.rgb.dtype == np.float32 and data.rgb.shape == (24, 32, 3)
    assert data.bit_depth == 8 and not data.grayscale and data.alpha is None
    assert data.path == out
    np.testing.assert_array_equal(aio.to_uint8(data.rgb), pixels)
    np.testing.assert_array_equal(np.asarray(Image.open(out).convert("RGB")), pixels)


@pytest.mark.parametrize("suffix", [".jpg", ".jpeg", ".JPG"])
def test_jpeg_round_trip_is_close(tmp_path: Path, rng: np.random.Generator, suffix: str) -> None:
    pixels = photo(rng)
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
    np.testing.assert_array_equal(quantize16(aio.to_float(u16)), u16)
    assert aio.to_uint8(np.array([-1.0, 0.499 / 255, 0.501 / 255, 3.0])).tolist() == [0, 0, 1, 255]
    assert aio.to_uint8(np.array([257, 65535], dtype=np.uint16)).tolist() == [1, 255]
    with pytest.raises(TypeError):
        aio.to_float(np.array([1], dtype=np.int64))


# ----- 16-bit -------------------------------------------------------------------------------------


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
    np.testing.assert_array_equal(quantize16(data.rgb), expected)
    if channels == 4:
        np.testing.assert_array_equal(quantize16(data.alpha), samples[:, :, 3])
    else:
        assert data.alpha is None
    # and written back alike
    again = aio.load_image(aio.save_image(tmp_path / f"e{suffix}", data))
    np.testing.assert_array_equal(quantize16(again.rgb), quantize16(data.rgb))
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
        np.testing.assert_array_equal(quantize16(data.rgb[:, :, 1]), gray)


def test_16bit_only_for_png_and_tiff(tmp_path: Path) -> None:
    for name in ("a.jpg", "a.webp", "a.bmp"):
        with pytest.raises(ImageWriteError) as exc:
            aio.write_image(tmp_path / name, np.zeros((2, 2, 3)), bit_depth=16)
        one_line_error(exc, name)
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
    pixels = photo(rng, 8, 8)
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
    cmyk = Image.fromarray(photo(rng)).convert("CMYK")
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


# ----- bad files ----------------------------------------------------------------------------------


def test_bad_files_raise_one_line_imageread_error(tmp_path: Path, rng: np.random.Generator) -> None:
    (tmp_path / "photo.jpg").write_bytes(b"")
    assert "file is empty" in read_error(tmp_path / "photo.jpg")
    (tmp_path / "notes.jpg").write_text("shopping list\n")
    assert "not an image file" in read_error(tmp_path / "notes.jpg")
    assert "no such file" in read_error(tmp_path / "missing.png")
    (tmp_path / "folder.png").mkdir()
    assert "directory" in read_error(tmp_path / "folder.png")
    (tmp_path / "anim.gif").write_bytes(b"GIF89a")
    assert "unsupported file type" in read_error(tmp_path / "anim.gif")
    Image.new("RGB", (4, 4)).save(tmp_path / "real.gif")
    (tmp_path / "gif.png").write_bytes((tmp_path / "real.gif").read_bytes())
    assert "not an image file" in read_error(tmp_path / "gif.png")


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".tif"])
def test_truncated_files_raise(tmp_path: Path, rng: np.random.Generator, suffix: str) -> None:
    full = aio.write_image(
        tmp_path / f"full{suffix}", rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    )
    data = full.read_bytes()
    (tmp_path / f"x{suffix}").write_bytes(data[: len(data) // 2])
    message = read_error(tmp_path / f"x{suffix}")
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
    assert "truncated" in read_error(tmp_path / f"x{suffix}")


# ----- writing ------------------------------------------------------------------------------------


def test_write_creates_parents_and_rejects_bad_targets(tmp_path: Path) -> None:
    out = aio.write_image(tmp_path / "a" / "b" / "c.webp", np.zeros((3, 3, 3)))
    assert out.is_file()
    with pytest.raises(ImageWriteError, match="unsupported"):
        aio.write_image(tmp_path / "x.gif", np.zeros((3, 3, 3)))
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(ImageWriteError, match="directory"):
        aio.write_image(tmp_path / "dir.png", np.zeros((3, 3, 3)), overwrite=True)


# ----- listing ------------------------------------------------------------------------------------


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
