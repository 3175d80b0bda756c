"""Read one entry of an Eet file, the archive format Enlightenment ships its wallpapers in.

Eet is the Enlightenment Foundation Libraries' data format; an Enlightenment wallpaper
(``*.edj``) is an Eet file whose entries ``edje/images/N`` are JPEG streams of the same photo at
several sizes, ``edje/images/0`` the largest. :func:`read_entry` returns the bytes of one named
entry with the Python standard library only, so the photo corpus (:mod:`aioir.data.photos`) can
name such a photo as ``ARCHIVE#ENTRY``.

Supported: the ``0x1ee70f42`` file magic, entries stored uncompressed and unciphered (edje_cc
stores lossy images so).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

from aioir.errors import AioirError

__all__ = ["EET_MAGIC", "read_entry"]

#: The first four bytes (big-endian) of an Eet file.
EET_MAGIC = 0x1EE70F42
_HEADER = 12  # magic, number of entries, number of dictionary entries
_ENTRY = 24  # data offset, size, uncompressed size, name offset, name size, flags


def read_entry(path: str | os.PathLike[str], name: str) -> bytes:
    """The bytes of entry ``name`` of the Eet file at ``path``.

    Raises :class:`~aioir.errors.AioirError` (one line, naming the file) when the file is not an
    Eet file, is truncated, has no such entry or stores it compressed or ciphered.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AioirError(f"{path}: cannot read the Eet file ({exc.strerror or exc})") from None
    if len(data) < _HEADER or struct.unpack_from(">I", data)[0] != EET_MAGIC:
        raise AioirError(f"{path}: not an Eet (.edj) file")
    try:
        (n_entries,) = struct.unpack_from(">I", data, 4)
        for i in range(n_entries):
            offset, size, data_size, name_offset, name_size, flags = struct.unpack_from(
                ">6I", data, _HEADER + _ENTRY * i
            )
            entry = data[name_offset : name_offset + name_size].rstrip(b"\0").decode("utf-8")
            if entry != name:
                continue
            if flags & 0b11 or size != data_size:  # bit 0: compressed, bit 1: ciphered
                raise AioirError(
                    f"{path}: entry {name!r} is compressed or ciphered; only plain entries "
                    "(edje_cc's lossy images) are supported"
                )
            if offset + size > len(data):
                raise AioirError(f"{path}: entry {name!r} runs past the end of the file")
            return data[offset : offset + size]
    except (struct.error, UnicodeDecodeError):
        raise AioirError(f"{path}: truncated or malformed Eet file") from None
    raise AioirError(f"{path}: no entry {name!r}")
