"""Reading and writing images: bit depth, alpha, grayscale, EXIF orientation, atomic writes.

Everything is returned as float32 H×W×3 in [0, 1]. What the pixels alone cannot say (the source's
alpha channel, bit depth and whether it was grayscale) travels in :class:`ImageData`, so
:func:`save_image` can write a restored image back in the form it came in.

Pillow does the work for 8-bit images and 16-bit grayscale TIFF. Pillow reduces 16-bit RGB(A) and
gray+alpha PNG/TIFF to 8 bits on read and cannot write them at all, so this module carries a small
numpy + zlib PNG codec (all five filter types, Adam7) and a baseline TIFF codec (uncompressed or
Deflate, predictor 1/2, strips) for 16-bit images. 16-bit TIFFs with other compressions (LZW,
PackBits) are read with ``tifffile`` when it is installed, otherwise refused with ImageReadError.

Bad files raise :class:`~aioir.errors.ImageReadError` / :class:`~aioir.errors.ImageWriteError`
with a one-line ``"<path>: <problem>"`` message.
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import struct
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from aioir.errors import ImageReadError, ImageWriteError

__all__ = [
    "MAX_PIXELS",
    "SUPPORTED_SUFFIXES",
    "ImageData",
    "is_image_file",
    "list_images",
    "load_image",
    "read_image",
    "save_image",
    "to_float",
    "to_uint8",
    "write_bytes_atomically",
    "write_image",
]

SUPPORTED_SUFFIXES: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
)
"""File suffixes (lower case) that :func:`load_image` and :func:`write_image` accept."""

MAX_PIXELS: int = 400_000_000
"""Largest image (width × height) :func:`load_image` decodes; larger ones raise ImageReadError."""

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
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_ORIENTATION_TAG = 0x0112
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
        if data.startswith(_PNG_SIGNATURE) and len(data) >= 33 and data[24] == 16:
            values, alpha, gray, orientation = _decode_png16(data, p)
            bit_depth = 16
        elif data[:4] in (b"II*\0", b"MM\0*") and max(_tiff_tags(data, p).get(258, (1,))) > 8:
            values, alpha, gray, orientation, bit_depth = _decode_tiff16(data, p)
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

    We check :data:`MAX_PIXELS` ourselves right after; the global is restored at once (the lock
    keeps concurrent readers in this module from restoring a value another one set).
    """
    with _PIXEL_LIMIT_LOCK:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _check_size(width: int, height: int, path: Path) -> None:
    if width <= 0 or height <= 0:
        raise ImageReadError(f"{path}: image has no pixels ({width}×{height})")
    if width * height > MAX_PIXELS:
        raise ImageReadError(
            f"{path}: image too large ({width}×{height} pixels, limit {MAX_PIXELS})"
        )


def _decode_with_pillow(
    data: bytes, path: Path
) -> tuple[np.ndarray, np.ndarray | None, bool, int, int]:
    """Decode with Pillow: (values, alpha, grayscale, orientation, bit_depth)."""
    with _own_pixel_limit():
        im = Image.open(io.BytesIO(data), formats=_PIL_FORMATS)
    with im:
        _check_size(im.width, im.height, path)
        im.load()  # full decode here, so a truncated file fails now
        orientation = int(im.getexif().get(_ORIENTATION_TAG, 1) or 1)
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


# ----- 16-bit PNG ---------------------------------------------------------------------------

_PNG_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}
# Adam7 passes: (x0, y0, dx, dy)
_ADAM7 = (
    (0, 0, 8, 8),
    (4, 0, 8, 8),
    (0, 4, 4, 8),
    (2, 0, 4, 4),
    (0, 2, 2, 4),
    (1, 0, 2, 2),
    (0, 1, 1, 2),
)


def _decode_png16(data: bytes, path: Path) -> tuple[np.ndarray, np.ndarray | None, bool, int]:
    """Decode a 16-bit PNG: (uint16 values H×W or H×W×3, uint16 alpha or None, gray, orientation)."""
    pos, idat, ihdr, trns, exif = 8, [], None, None, None
    while True:
        if pos + 8 > len(data):
            if ihdr is not None and idat:
                break  # IEND missing after the image data: the decoder below checks completeness
            raise ImageReadError(f"{path}: truncated image data")
        length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
        end = pos + 8 + length
        if end + 4 > len(data):
            raise ImageReadError(f"{path}: truncated image data")
        body = data[pos + 8 : end]
        (crc,) = struct.unpack(">I", data[end : end + 4])
        if zlib.crc32(ctype + body) != crc:
            raise ImageReadError(f"{path}: corrupt PNG data (CRC mismatch in {ctype!r} chunk)")
        if ctype == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif ctype == b"IDAT":
            idat.append(body)
        elif ctype == b"tRNS":
            trns = body
        elif ctype == b"eXIf":
            exif = body
        elif ctype == b"IEND":
            break
        pos = end + 4
    if ihdr is None:
        raise ImageReadError(f"{path}: corrupt PNG data (no IHDR chunk)")
    width, height, depth, color_type, _, _, interlace = ihdr
    if depth != 16 or color_type not in _PNG_CHANNELS or interlace not in (0, 1):
        raise ImageReadError(f"{path}: corrupt PNG data (invalid IHDR)")
    _check_size(width, height, path)
    channels = _PNG_CHANNELS[color_type]
    inflater = zlib.decompressobj()
    raw = inflater.decompress(b"".join(idat))
    if not inflater.eof:
        raise ImageReadError(f"{path}: truncated image data")
    bpp = 2 * channels
    if interlace == 0:
        passes = [(0, 0, 1, 1)]
    else:
        passes = list(_ADAM7)
    out = np.zeros((height, width, channels), dtype=np.uint16)
    offset = 0
    for x0, y0, dx, dy in passes:
        pw, ph = -(-(width - x0) // dx), -(-(height - y0) // dy)
        if pw <= 0 or ph <= 0:
            continue
        size = ph * (1 + pw * bpp)
        block = raw[offset : offset + size]
        if len(block) < size:
            raise ImageReadError(f"{path}: truncated image data")
        offset += size
        rows = np.frombuffer(block, dtype=np.uint8).reshape(ph, 1 + pw * bpp)
        filters = rows[:, 0]
        if filters.max() > 4:
            raise ImageReadError(f"{path}: corrupt PNG data (invalid filter type)")
        unfiltered = _png_unfilter(rows[:, 1:].reshape(ph, pw, bpp), filters)
        samples = unfiltered.reshape(ph, pw * bpp).view(">u2").reshape(ph, pw, channels)
        out[y0::dy, x0::dx] = samples
    alpha = None
    if channels in (2, 4):
        alpha = out[:, :, -1]
        out = out[:, :, :-1]
    elif trns is not None and len(trns) >= 2 * channels:
        key = np.frombuffer(trns[: 2 * channels], dtype=">u2")
        alpha = np.where(np.all(out == key, axis=2), 0, 65535).astype(np.uint16)
    values = out[:, :, 0] if channels in (1, 2) else out
    orientation = 1
    if exif is not None:
        exif_data = Image.Exif()
        exif_data.load(exif if exif.startswith(b"Exif\x00\x00") else b"Exif\x00\x00" + exif)
        orientation = int(exif_data.get(_ORIENTATION_TAG, 1) or 1)
    return values, alpha, channels in (1, 2), orientation


def _png_unfilter(filtered: np.ndarray, filters: np.ndarray) -> np.ndarray:
    """Undo PNG row filters: ``filtered`` is uint8 H×W×bpp (pixel = bpp bytes), one filter per row.

    Rows using only None/Sub/Up are undone row by row (vectorised within each row). Average and
    Paeth depend on the left pixel *and* the row above, so those images are undone along
    anti-diagonals on a skewed copy: pixel (y, x) goes to column y + x, where its left, upper and
    upper-left neighbours all lie in the two previous columns.
    """
    h, w, bpp = filtered.shape
    if not np.any(filters >= 3):
        out = np.empty_like(filtered)
        prev = np.zeros((w, bpp), dtype=np.uint8)
        for y in range(h):
            row = filtered[y]
            if filters[y] == 1:
                row = np.cumsum(row, axis=0, dtype=np.uint8)
            elif filters[y] == 2:
                row = row + prev
            out[y] = row
            prev = out[y]
        return out
    # skewed[y + x + 1, y + 1] holds pixel (y, x); the rest stays 0, as PNG's borders are
    skewed = np.zeros((h + w + 1, h + 1, bpp), dtype=np.uint8)
    src = np.zeros_like(skewed)
    for y in range(h):
        src[y + 1 : y + 1 + w, y + 1] = filtered[y]
    ftype = np.concatenate([[0], filters]).astype(np.int16)[:, None]
    zeros = np.zeros((h, bpp), dtype=np.int16)
    for s in range(1, h + w):
        lo, hi = max(1, s - w + 1), min(h, s) + 1  # rows y + 1 with 0 <= s - 1 - y < w
        f = ftype[lo:hi]
        a = skewed[s - 1, lo:hi].astype(np.int16)  # left
        b = skewed[s - 1, lo - 1 : hi - 1].astype(np.int16)  # up
        c = skewed[s - 2, lo - 1 : hi - 1].astype(np.int16) if s >= 2 else zeros[: hi - lo]
        pa, pb, pc = np.abs(b - c), np.abs(a - c), np.abs(a + b - 2 * c)
        paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
        pred = np.select([f == 1, f == 2, f == 3, f == 4], [a, b, (a + b) >> 1, paeth], default=0)
        skewed[s, lo:hi] = (src[s, lo:hi] + pred) & 0xFF
    out = np.empty_like(filtered)
    for y in range(h):
        out[y] = skewed[y + 1 : y + 1 + w, y + 1]
    return out


def _png_filter(rows: np.ndarray, filters: np.ndarray) -> np.ndarray:
    """Apply PNG row filters to uint8 H×W×bpp pixels; returns H×(1 + W·bpp) rows with type bytes."""
    x = rows.astype(np.int16)
    h, w, bpp = x.shape
    a = np.zeros_like(x)
    a[:, 1:] = x[:, :-1]
    b = np.zeros_like(x)
    b[1:] = x[:-1]
    c = np.zeros_like(x)
    c[1:, 1:] = x[:-1, :-1]
    pa, pb, pc = np.abs(b - c), np.abs(a - c), np.abs(a + b - 2 * c)
    paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
    f = np.asarray(filters, dtype=np.int16)[:, None, None]
    pred = np.select([f == 1, f == 2, f == 3, f == 4], [a, b, (a + b) >> 1, paeth], default=0)
    body = ((x - pred) & 0xFF).astype(np.uint8).reshape(h, w * bpp)
    return np.concatenate([np.asarray(filters, dtype=np.uint8)[:, None], body], axis=1)


def _png_chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))


def _encode_png16(samples: np.ndarray, filters: np.ndarray | None = None) -> bytes:
    """Encode uint16 H×W×C (C = 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA) as a 16-bit PNG.

    Each row gets whichever of None/Sub/Up filters leaves the smallest sum of absolute residues
    (unless ``filters`` is given); those three decode fast here and compress 16-bit photos well.
    """
    h, w, channels = samples.shape
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    pixels = np.ascontiguousarray(samples.astype(">u2")).view(np.uint8).reshape(h, w, 2 * channels)
    if filters is None:
        sub = pixels.copy()
        sub[:, 1:] -= pixels[:, :-1]  # uint8 arithmetic wraps, as PNG's does
        up = pixels.copy()
        up[1:] -= pixels[:-1]
        candidates = np.stack([pixels, sub, up]).reshape(3, h, w * 2 * channels)
        cost = np.abs(candidates.view(np.int8), dtype=np.int32).sum(axis=2)
        best = np.argmin(cost, axis=0)
        filtered = np.concatenate(
            [best.astype(np.uint8)[:, None], candidates[best, np.arange(h)]], axis=1
        )
    else:
        filtered = _png_filter(pixels, np.asarray(filters))
    compressed = zlib.compress(filtered.tobytes(), 6)
    ihdr = struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0)
    step = 1 << 23
    idat = b"".join(
        _png_chunk(b"IDAT", compressed[i : i + step]) for i in range(0, len(compressed), step)
    )
    return _PNG_SIGNATURE + _png_chunk(b"IHDR", ihdr) + idat + _png_chunk(b"IEND", b"")


# ----- 16-bit TIFF --------------------------------------------------------------------------


_TIFF_TYPE_SIZES = {1: ("B", 1), 3: ("H", 2), 4: ("I", 4)}


def _tiff_tags(data: bytes, path: Path) -> dict[int, tuple[int, ...]]:
    """The integer tags (BYTE/SHORT/LONG) of a classic TIFF's first IFD."""
    endian = "<" if data[:2] == b"II" else ">"
    if len(data) < 8:
        raise ImageReadError(f"{path}: truncated image data")
    (ifd,) = struct.unpack(endian + "I", data[4:8])
    if ifd + 2 > len(data):
        raise ImageReadError(f"{path}: truncated image data")
    (count,) = struct.unpack(endian + "H", data[ifd : ifd + 2])
    if ifd + 2 + 12 * count > len(data):
        raise ImageReadError(f"{path}: truncated image data")
    tags: dict[int, tuple[int, ...]] = {}
    for i in range(count):
        entry = data[ifd + 2 + 12 * i : ifd + 14 + 12 * i]
        tag, typ, n = struct.unpack(endian + "HHI", entry[:8])
        if typ not in _TIFF_TYPE_SIZES:
            continue
        code, size = _TIFF_TYPE_SIZES[typ]
        if n * size <= 4:
            raw = entry[8 : 8 + n * size]
        else:
            (offset,) = struct.unpack(endian + "I", entry[8:])
            raw = data[offset : offset + n * size]
            if len(raw) < n * size:
                raise ImageReadError(f"{path}: truncated image data")
        tags[tag] = struct.unpack(f"{endian}{n}{code}", raw)
    return tags


def _decode_tiff16(data: bytes, path: Path) -> tuple[np.ndarray, np.ndarray | None, bool, int, int]:
    """Decode a 16-bit TIFF from its tags (Pillow reduces 16-bit RGB to 8 bits)."""
    tags = _tiff_tags(data, path)
    if 256 not in tags or 257 not in tags:
        raise ImageReadError(f"{path}: corrupt TIFF data (no image size)")
    width, height = tags[256][0], tags[257][0]
    _check_size(width, height, path)
    spp = tags.get(277, (1,))[0]
    bits = tags.get(258, (1,))
    photometric = tags.get(262, (1,))[0]
    compression = tags.get(259, (1,))[0]
    predictor = tags.get(317, (1,))[0]
    planar = tags.get(284, (1,))[0]
    sample_format = tags.get(339, (1,))
    extra = tags.get(338, ())
    orientation = tags.get(274, (1,))[0]
    color = 3 if photometric == 2 else 1
    if (
        any(b != 16 for b in bits)
        or any(f != 1 for f in sample_format)
        or photometric not in (0, 1, 2)
        or spp < color
    ):
        raise ImageReadError(
            f"{path}: unsupported TIFF sample layout (bits {bits}, photometric {photometric})"
        )
    if compression not in (1, 8, 32946) or predictor not in (1, 2) or 322 in tags:
        samples = _tifffile_fallback(data, path, compression)
    else:
        samples = _tiff_strips(data, tags, width, height, spp, planar, compression, predictor, path)
    if samples.ndim == 2:
        samples = samples[:, :, None]
    values = samples[:, :, :color]
    if photometric == 0:
        values = 65535 - values
    alpha = samples[:, :, color] if spp > color and extra and extra[0] in (1, 2) else None
    values = values[:, :, 0] if color == 1 else values
    return values, alpha, color == 1, orientation, 16


def _tiff_strips(
    data: bytes,
    tags: dict[int, tuple[int, ...]],
    width: int,
    height: int,
    spp: int,
    planar: int,
    compression: int,
    predictor: int,
    path: Path,
) -> np.ndarray:
    """Read the strips of an uncompressed or Deflate TIFF into uint16 H×W×spp."""
    offsets, counts = tags.get(273), tags.get(279)
    if offsets is None or counts is None:
        raise ImageReadError(f"{path}: corrupt TIFF data (no strip offsets)")
    rows_per_strip = max(1, min(tags.get(278, (height,))[0], height))
    endian = "<" if data[:2] == b"II" else ">"
    planes = spp if planar == 2 else 1
    per_plane = spp // planes
    strips_per_plane = -(-height // rows_per_strip)
    if len(offsets) < planes * strips_per_plane or len(counts) < len(offsets):
        raise ImageReadError(f"{path}: corrupt TIFF data (too few strips)")
    out = np.empty((height, width, spp), dtype=np.uint16)
    for plane in range(planes):
        for k in range(strips_per_plane):
            i = plane * strips_per_plane + k
            start, count = int(offsets[i]), int(counts[i])
            chunk = data[start : start + count]
            if len(chunk) < count:
                raise ImageReadError(f"{path}: truncated image data")
            if compression != 1:
                chunk = zlib.decompress(chunk)
            y0 = k * rows_per_strip
            nrows = min(rows_per_strip, height - y0)
            need = nrows * width * per_plane * 2
            if len(chunk) < need:
                raise ImageReadError(f"{path}: truncated image data")
            strip = np.frombuffer(chunk[:need], dtype=endian + "u2").reshape(
                nrows, width, per_plane
            )
            if predictor == 2:
                strip = np.cumsum(strip, axis=1, dtype=np.uint16)
            out[y0 : y0 + nrows, :, plane * per_plane : (plane + 1) * per_plane] = strip
    return out


def _tifffile_fallback(data: bytes, path: Path, compression: int) -> np.ndarray:
    """Decode a 16-bit TIFF layout this module does not handle, with tifffile if installed."""
    try:
        import tifffile  # optional; not a dependency of aioir
    except ImportError:
        raise ImageReadError(
            f"{path}: 16-bit TIFF with compression {compression} or tiles needs the optional"
            " 'tifffile' package"
        ) from None
    try:
        array = tifffile.imread(io.BytesIO(data), key=0)
    except Exception as exc:  # tifffile raises many types for bad files; we report them all alike
        raise ImageReadError(f"{path}: corrupt TIFF data ({' '.join(str(exc).split())})") from None
    if array.dtype != np.uint16 or array.ndim not in (2, 3):
        raise ImageReadError(f"{path}: unsupported TIFF layout {array.shape} {array.dtype}")
    return array


def _encode_tiff16(samples: np.ndarray) -> bytes:
    """Encode uint16 H×W×C (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA) as a little-endian baseline TIFF.

    Adobe Deflate compression with horizontal predictor, strips of about 1 MiB.
    """
    h, w, spp = samples.shape
    row_bytes = w * spp * 2
    rows_per_strip = max(1, min(h, (1 << 20) // row_bytes))
    diff = samples.astype("<u2")
    diff = np.concatenate([diff[:, :1], np.diff(diff, axis=1)], axis=1).astype("<u2")
    strips = [
        zlib.compress(np.ascontiguousarray(diff[y : y + rows_per_strip]).tobytes(), 6)
        for y in range(0, h, rows_per_strip)
    ]
    header = 8
    strip_offsets, pos = [], header
    for s in strips:
        strip_offsets.append(pos)
        pos += len(s) + (len(s) & 1)  # keep word alignment
    ifd_offset = pos
    short, long_ = 3, 4
    entries: list[tuple[int, int, list[int]]] = [
        (256, long_, [w]),
        (257, long_, [h]),
        (258, short, [16] * spp),
        (259, short, [8]),
        (262, short, [2 if spp >= 3 else 1]),
        (273, long_, strip_offsets),
        (277, short, [spp]),
        (278, long_, [rows_per_strip]),
        (279, long_, [len(s) for s in strips]),
        (284, short, [1]),
        (317, short, [2]),
    ]
    if spp in (2, 4):
        entries.append((338, short, [2]))  # unassociated alpha
    entries.append((339, short, [1] * spp))
    ifd_size = 2 + 12 * len(entries) + 4
    extra_pos = ifd_offset + ifd_size
    ifd, extra = [struct.pack("<H", len(entries))], []
    for tag, typ, values in entries:
        fmt = "<" + ("H" if typ == short else "I") * len(values)
        payload = struct.pack(fmt, *values)
        if len(payload) <= 4:
            ifd.append(struct.pack("<HHI", tag, typ, len(values)) + payload.ljust(4, b"\0"))
        else:
            ifd.append(struct.pack("<HHII", tag, typ, len(values), extra_pos))
            extra.append(payload)
            extra_pos += len(payload)
    ifd.append(struct.pack("<I", 0))
    if extra_pos >= 1 << 32:
        raise ValueError("image too large for a classic TIFF file (4 GiB)")
    body = b"".join(s + b"\0" * (len(s) & 1) for s in strips)
    return b"II*\0" + struct.pack("<I", ifd_offset) + body + b"".join(ifd) + b"".join(extra)


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
        return _encode_png16(samples) if fmt == "PNG" else _encode_tiff16(samples)
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


def write_bytes_atomically(path: Path, payload: bytes, *, overwrite: bool = False) -> None:
    """Write ``payload`` to a temporary file beside ``path``, fsync it, then move it in place.

    Never leaves a partial file; without ``overwrite`` an existing ``path`` (even one that
    appears meanwhile) raises :class:`ImageWriteError`. Used for every file aioir writes.
    """
    if path.is_dir():
        raise ImageWriteError(f"{path}: is a directory")
    if not overwrite and path.exists():
        raise ImageWriteError(f"{path}: exists; pass overwrite=True")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ImageWriteError(f"{path}: cannot create folder ({exc.strerror or exc})") from None
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp{path.suffix}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            _move_no_clobber(tmp, path)
    except ImageWriteError:
        _remove_quietly(tmp)
        raise
    except OSError as exc:
        _remove_quietly(tmp)
        raise ImageWriteError(f"{path}: cannot write file ({exc.strerror or exc})") from None
    except BaseException:
        _remove_quietly(tmp)
        raise


def _move_no_clobber(tmp: Path, path: Path) -> None:
    """Move ``tmp`` to ``path`` unless ``path`` exists (atomically where hard links work)."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise ImageWriteError(f"{path}: exists; pass overwrite=True") from None
    except OSError:  # file system without hard links: check, then replace
        if path.exists():
            raise ImageWriteError(f"{path}: exists; pass overwrite=True") from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


def _remove_quietly(tmp: Path) -> None:
    with contextlib.suppress(OSError):
        tmp.unlink()
