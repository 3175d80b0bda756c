"""16-bit PNG: a numpy + zlib codec, as Pillow reduces 16-bit RGB(A) and gray+alpha PNG to 8 bits.

:func:`~aioir.io.load_image` decodes every 16-bit PNG here (all five filter types, Adam7, the tRNS
colour key, eXIf orientation) and :func:`~aioir.io.write_image` encodes every 16-bit PNG here
(None/Sub/Up filters, chosen per row).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image

from aioir.errors import ImageReadError
from aioir.io.limits import check_size

__all__ = ["PNG_SIGNATURE", "decode_png16", "encode_png16", "is_png16"]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
"""The eight bytes every PNG file starts with."""

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


def is_png16(data: bytes) -> bool:
    """Whether ``data`` is a PNG whose IHDR says 16 bits per sample."""
    return data.startswith(PNG_SIGNATURE) and len(data) >= 33 and data[24] == 16


def decode_png16(data: bytes, path: Path) -> tuple[np.ndarray, np.ndarray | None, bool, int]:
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
    check_size(width, height, path)
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
        orientation = int(exif_data.get(ExifTags.Base.Orientation, 1) or 1)
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


def encode_png16(samples: np.ndarray, filters: np.ndarray | None = None) -> bytes:
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
    return PNG_SIGNATURE + _png_chunk(b"IHDR", ihdr) + idat + _png_chunk(b"IEND", b"")
