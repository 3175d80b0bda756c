"""16-bit TIFF: a baseline codec, as Pillow reduces 16-bit RGB(A) and gray+alpha TIFF to 8 bits.

:func:`~aioir.io.load_image` decodes every TIFF with more than 8 bits per sample here and
:func:`~aioir.io.write_image` encodes every 16-bit TIFF here. Read: uncompressed or Deflate strips,
predictor 1 or 2, chunky or planar samples, either byte order; other layouts (LZW, PackBits, tiles)
go through ``tifffile`` when it is installed and are otherwise refused with ImageReadError. Write:
little-endian, Deflate with the horizontal predictor, strips of about 1 MiB.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np

from aioir.errors import ImageReadError
from aioir.io.limits import check_size

__all__ = ["decode_tiff16", "encode_tiff16", "is_tiff16"]

_TIFF_TYPE_SIZES = {1: ("B", 1), 3: ("H", 2), 4: ("I", 4)}


def is_tiff16(data: bytes, path: Path) -> bool:
    """Whether ``data`` is a TIFF with more than 8 bits per sample (its first IFD says so)."""
    return data[:4] in (b"II*\0", b"MM\0*") and max(_tiff_tags(data, path).get(258, (1,))) > 8


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


def decode_tiff16(data: bytes, path: Path) -> tuple[np.ndarray, np.ndarray | None, bool, int, int]:
    """Decode a 16-bit TIFF from its tags (Pillow reduces 16-bit RGB to 8 bits)."""
    tags = _tiff_tags(data, path)
    if 256 not in tags or 257 not in tags:
        raise ImageReadError(f"{path}: corrupt TIFF data (no image size)")
    width, height = tags[256][0], tags[257][0]
    check_size(width, height, path)
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


def encode_tiff16(samples: np.ndarray) -> bytes:
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
