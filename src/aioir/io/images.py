"""Reading and writing image files: the public API of :mod:`aioir.io` (listed in its ``__all__``).

Everything is returned as float32 H×W×3 in [0, 1]. What the pixels alone cannot say (the source's
alpha channel, bit depth and whether it was grayscale) travels in :class:`ImageData`, so
:func:`save_image` can write a restored image back in the form it came in.

Pillow does the work for 8-bit images; every 16-bit PNG and TIFF goes through
:mod:`aioir.io.png16` and :mod:`aioir.io.tiff16`, and every file is written by
:func:`aioir.io.atomic.write_bytes_atomically`.

Bad files raise :class:`~aioir.errors.ImageReadError` / :class:`~aioir.errors.ImageWriteError`
with a one-line ``"<path>: <problem>"`` message.
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, UnidentifiedImageError

from aioir.errors import ImageReadError, ImageWriteError
from aioir.io.atomic import write_bytes_atomically
from aioir.io.limits import check_size
from aioir.io.png16 import decode_png16, encode_png16, is_png16
from aioir.io.tiff16 import decode_tiff16, encode_tiff16, is_tiff16

SUPPORTED_SUFFIXES: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
)
"""File suffixes (lower case) that :func:`load_image` and :func:`write_image` accept."""

_PIL_FORMATS = ("PNG", "JPEG", "BMP", "TIFF", "WEBP")  # JPEG also opens MPO
_WRITE_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WEBP",
}
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float64)  # ITU-R BT.601, as Pillow's convert("L")
# Exceptions Pillow / zlib / struct raise for a malformed file (and nothing else we expect).
_BAD_FILE_ERRORS = (
    OSError,
    SyntaxError,
    EOFError,
    ValueError,
    struct.error,
    zlib.error,
    Image.DecompressionBombError,
)
_PIXEL_LIMIT_LOCK = threading.Lock()


@dataclass(frozen=True)
class ImageData:
    """An image as read from disk: float32 RGB plus what is needed to write it back alike."""

    rgb: np.ndarray
    """float32 H×W×3 in [0, 1]."""
    alpha: np.ndarray | None
    """float32 H×W in [0, 1], or None when the source had no transparency."""
    bit_depth: int
    """8 or 16: bits per sample of the source file."""
    grayscale: bool
    """True when the source had no colour (L, I;16, 1-bit, gray+alpha)."""
    path: Path | None
    """The file it was read from."""


# --------------------------------------------------------------------------------------------
# conversions


def to_float(array: np.ndarray) -> np.ndarray:
    """uint8 (/255) or uint16 (/65535) to float32 in [0, 1]; float arrays become float32 as is."""
    array = np.asarray(array)
    if array.dtype == np.uint8:
        return array.astype(np.float32) / np.float32(255.0)
    if array.dtype == np.uint16:
        return (array.astype(np.float64) / 65535.0).astype(np.float32)
    if np.issubdtype(array.dtype, np.floating):
        return array.astype(np.float32, copy=False)
    if array.dtype == np.bool_:
        return array.astype(np.float32)
    raise TypeError(f"to_float: unsupported dtype {array.dtype} (want uint8, uint16 or float)")


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    """Float in [0, 1] (clipped, rounded) or uint16 (rounded) to uint8; uint8 is returned as is."""
    return _quantize(rgb, 8)


def _quantize(array: np.ndarray, bit_depth: int) -> np.ndarray:
    """Any of uint8 / uint16 / float [0, 1] to unsigned integers of ``bit_depth`` bits."""
    array = np.asarray(array)
    dtype, top = (np.uint8, 255.0) if bit_depth == 8 else (np.uint16, 65535.0)
    if array.dtype == dtype:
        return array
    if array.dtype in (np.uint8, np.uint16):
        scaled = array.astype(np.float64) * (top / float(np.iinfo(array.dtype).max))
    elif np.issubdtype(array.dtype, np.floating) or array.dtype == np.bool_:
        scaled = np.clip(np.nan_to_num(array.astype(np.float64)), 0.0, 1.0) * top
    else:
        raise TypeError(f"unsupported dtype {array.dtype} (want uint8, uint16 or float)")
    return np.rint(scaled).astype(dtype)


# --------------------------------------------------------------------------------------------
# listing


def is_image_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` has a supported image suffix (case-insensitive); the file is not opened."""
    return Path(path).suffix.lower() in SUPPORTED_SUFFIXES


def list_images(folder: str | os.PathLike[str], recursive: bool = False) -> list[Path]:
    """Sorted image files in ``folder`` (supported suffixes only, hidden files skipped).

    Hidden files (name starting with ``.``, e.g. macOS ``._photo.jpg`` resource forks and this
    module's temporary files) are skipped, as are hidden folders when ``recursive``.
    """
    root = Path(folder)
    if not root.is_dir():
        raise ImageReadError(f"{root}: not a folder")
    candidates = root.rglob("*") if recursive else root.iterdir()
    found = []
    for p in candidates:
        rel = p.relative_to(root).parts
        if any(part.startswith(".") for part in rel):
            continue
        if is_image_file(p) and p.is_file():
            found.append(p)
    return sorted(found)


# --------------------------------------------------------------------------------------------
# reading


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """The RGB pixels of an image file: float32 H×W×3 in [0, 1] (see :func:`load_image`)."""
    return load_image(path).rgb


def load_image(path: str | os.PathLike[str]) -> ImageData:
    """Read PNG/JPEG/BMP/TIFF/WebP into float32 RGB in [0, 1], EXIF orientation applied.

    Grayscale comes in as three equal channels (``grayscale=True``); alpha is returned separately;
    16-bit PNG/TIFF keep full precision; CMYK and palette images are converted to RGB.
    Raises ImageReadError for missing, empty, truncated, corrupt, unsupported or too large files.
    """
    p = Path(path)
    if p.suffix.lower() not in SUPPORTED_SUFFIXES:
        raise ImageReadError(
            f"{p}: unsupported file type {p.suffix or '(no suffix)'!r}"
            f" (supported: {', '.join(sorted(SUPPORTED_SUFFIXES))})"
        )
    try:
        if p.is_dir():
            raise ImageReadError(f"{p}: is a directory, not an image file")
        data = p.read_bytes()
    except FileNotFoundError:
        raise ImageReadError(f"{p}: no such file") from None
    except OSError as exc:
        raise ImageReadError(f"{p}: cannot read file ({exc.strerror or exc})") from None
    if not data:
        raise ImageReadError(f"{p}: file is empty")
    try:
        if is_png16(data):
            values, alpha, gray, orientation = decode_png16(data, p)
            bit_depth = 16
        elif is_tiff16(data, p):
            values, alpha, gray, orientation, bit_depth = decode_tiff16(data, p)
        else:
            values, alpha, gray, orientation, bit_depth = _decode_with_pillow(data, p)
    except ImageReadError:
        raise
    except _BAD_FILE_ERRORS as exc:
        raise ImageReadError(f"{p}: {_describe(exc)}") from None
    values = _orient(values, orientation)
    alpha = None if alpha is None else _orient(alpha, orientation)
    rgb = to_float(values)
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[:, :, None], 3, axis=2)
    return ImageData(
        rgb=np.ascontiguousarray(rgb),
        alpha=None if alpha is None else np.ascontiguousarray(to_float(alpha)),
        bit_depth=bit_depth,
        grayscale=gray,
        path=p,
    )


def _describe(exc: BaseException) -> str:
    """One line saying what is wrong with a file, from a decoder's exception."""
    if isinstance(exc, UnidentifiedImageError):
        return "not an image file (cannot identify format)"
    if isinstance(exc, Image.DecompressionBombError):
        return "image too large (decompression-bomb limit)"
    text = " ".join(str(exc).split())
    if "truncated" in text.lower() or isinstance(exc, EOFError):
        return "truncated image data"
    return f"corrupt image data ({text or type(exc).__name__})"


@contextlib.contextmanager
def _own_pixel_limit() -> Iterator[None]:
    """Lift Pillow's decompression-bomb limit while a file's header is parsed.

    We check :data:`~aioir.io.limits.MAX_PIXELS` ourselves right after; the global is restored at
    once (the lock keeps concurrent readers in this module from restoring a value another one set).
    """
    with _PIXEL_LIMIT_LOCK:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _decode_with_pillow(
    data: bytes, path: Path
) -> tuple[np.ndarray, np.ndarray | None, bool, int, int]:
    """Decode with Pillow: (values, alpha, grayscale, orientation, bit_depth)."""
    with _own_pixel_limit():
        im = Image.open(io.BytesIO(data), formats=_PIL_FORMATS)
    with im:
        check_size(im.width, im.height, path)
        im.load()  # full decode here, so a truncated file fails now
        orientation = int(im.getexif().get(ExifTags.Base.Orientation, 1) or 1)
        mode = im.mode
        transparent = im.info.get("transparency") is not None
        if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
            return np.asarray(im).astype(np.uint16), None, True, orientation, 16
        if mode in ("1", "L") and not transparent:
            return np.asarray(im.convert("L")), None, True, orientation, 8
        if mode in ("1", "L", "LA", "La"):
            la = np.asarray(im.convert("LA"))
            return la[:, :, 0], la[:, :, 1], True, orientation, 8
        if mode in ("RGBA", "RGBa", "PA") or (mode in ("RGB", "P") and transparent):
            rgba = np.asarray(im.convert("RGBA"))
            return rgba[:, :, :3], rgba[:, :, 3], False, orientation, 8
        if mode in ("RGB", "RGBX", "CMYK", "YCbCr", "LAB", "HSV", "P"):
            return np.asarray(im.convert("RGB")), None, False, orientation, 8
        raise ImageReadError(f"{path}: unsupported pixel format {mode!r}")


def _orient(a: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1–8) to an H×W(×C) array, as ImageOps.exif_transpose does."""
    if orientation == 2:
        return a[:, ::-1]
    if orientation == 3:
        return a[::-1, ::-1]
    if orientation == 4:
        return a[::-1]
    if orientation == 5:
        return a.swapaxes(0, 1)
    if orientation == 6:
        return np.rot90(a, k=-1)
    if orientation == 7:
        return a[::-1, ::-1].swapaxes(0, 1)
    if orientation == 8:
        return np.rot90(a, k=1)
    return a


# --------------------------------------------------------------------------------------------
# writing


def save_image(
    path: str | os.PathLike[str],
    like: ImageData,
    rgb: np.ndarray | None = None,
    *,
    overwrite: bool = False,
) -> Path:
    """Write ``rgb`` (default ``like.rgb``) with ``like``'s alpha, bit depth and grayscale flag.

    Adapts to what the target format can hold: alpha is dropped for JPEG/BMP, and 16-bit sources
    are written at 8 bits to JPEG/BMP/WebP. (:func:`write_image` refuses both instead.)
    """
    pixels = like.rgb if rgb is None else np.asarray(rgb)
    suffix = Path(path).suffix.lower()
    alpha = like.alpha if suffix not in (".jpg", ".jpeg", ".bmp") else None
    bit_depth = like.bit_depth if suffix in (".png", ".tif", ".tiff") else 8
    return write_image(
        path,
        pixels,
        alpha=alpha,
        bit_depth=bit_depth,
        grayscale=like.grayscale,
        overwrite=overwrite,
    )


def write_image(
    path: str | os.PathLike[str],
    rgb: np.ndarray,
    *,
    alpha: np.ndarray | None = None,
    bit_depth: int = 8,
    grayscale: bool = False,
    overwrite: bool = False,
) -> Path:
    """Write an image atomically; the format follows the suffix. Returns the path written.

    ``rgb`` is float (clipped to [0, 1]) or uint8/uint16, H×W×3 or H×W (grayscale). ``alpha`` is
    H×W in the same conventions. ``bit_depth`` 16 is possible for PNG and TIFF only;
    ``grayscale=True`` stores one channel (BT.601 luma of RGB input). JPEG is written at quality
    95 with 4:4:4 chroma, WebP lossless, TIFF with Deflate. JPEG and BMP cannot hold alpha.
    The file is written to a temporary name beside ``path`` and moved in place; an existing
    file is replaced only with ``overwrite=True``. Parent folders are created.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    fmt = _WRITE_FORMATS.get(suffix)
    if fmt is None:
        raise ImageWriteError(
            f"{p}: unsupported file type {p.suffix or '(no suffix)'!r}"
            f" (supported: {', '.join(sorted(SUPPORTED_SUFFIXES))})"
        )
    if bit_depth not in (8, 16):
        raise ImageWriteError(f"{p}: bit_depth must be 8 or 16, not {bit_depth!r}")
    if bit_depth == 16 and fmt not in ("PNG", "TIFF"):
        raise ImageWriteError(f"{p}: 16-bit images can be written only as PNG or TIFF")
    if alpha is not None and fmt in ("JPEG", "BMP"):
        raise ImageWriteError(f"{p}: {fmt} cannot store an alpha channel; use PNG, TIFF or WebP")
    pixels = np.asarray(rgb)
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    if pixels.ndim == 2:
        grayscale = True
    elif pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ImageWriteError(f"{p}: expected an H×W×3 or H×W array, got shape {pixels.shape}")
    if pixels.shape[0] == 0 or pixels.shape[1] == 0:
        raise ImageWriteError(f"{p}: image has no pixels (shape {pixels.shape})")
    if grayscale and pixels.ndim == 3:
        pixels = _luma(pixels)
    planes = [_quantize(pixels, bit_depth)]
    if alpha is not None:
        a = np.asarray(alpha)
        if a.ndim == 3 and a.shape[2] == 1:
            a = a[:, :, 0]
        if a.shape != pixels.shape[:2]:
            raise ImageWriteError(
                f"{p}: alpha shape {a.shape} does not match image size {pixels.shape[:2]}"
            )
        planes.append(_quantize(a, bit_depth))
    samples = np.concatenate([x if x.ndim == 3 else x[:, :, None] for x in planes], axis=2)
    encoded = _encode(samples, fmt, bit_depth, p)
    write_bytes_atomically(p, encoded, overwrite=overwrite)
    return p


def _luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma of float or integer RGB, in the input's scale (float64)."""
    if rgb.dtype in (np.uint8, np.uint16):
        top = float(np.iinfo(rgb.dtype).max)
        return np.clip(rgb.astype(np.float64) @ _LUMA / top, 0.0, 1.0)
    return rgb.astype(np.float64) @ _LUMA


def _encode(samples: np.ndarray, fmt: str, bit_depth: int, path: Path) -> bytes:
    """Encode uint8/uint16 H×W×C (C = 1..4) into the bytes of a ``fmt`` file."""
    if bit_depth == 16:
        return encode_png16(samples) if fmt == "PNG" else encode_tiff16(samples)
    channels = samples.shape[2]
    if fmt == "WEBP" and channels in (1, 2):  # WebP has no grayscale modes
        gray = samples[:, :, :1]
        samples = np.concatenate([gray, gray, gray, samples[:, :, 1:]], axis=2)
        channels = samples.shape[2]
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[channels]
    im = Image.fromarray(np.ascontiguousarray(samples[:, :, 0] if channels == 1 else samples))
    if im.mode != mode:
        raise ImageWriteError(f"{path}: cannot build a {mode} image from {samples.dtype} data")
    options: dict[str, object] = {}
    if fmt == "JPEG":
        options = {"quality": 95, "subsampling": 0}
    elif fmt == "WEBP":
        options = {"lossless": True, "exact": True}  # keep RGB under alpha 0
    elif fmt == "TIFF":
        options = {"compression": "tiff_adobe_deflate"}
    buffer = io.BytesIO()
    try:
        im.save(buffer, format=fmt, **options)
    except (OSError, ValueError) as exc:
        raise ImageWriteError(f"{path}: cannot encode as {fmt} ({exc})") from None
    return buffer.getvalue()
