"""The atomic file writer, :func:`write_bytes_atomically`: a file is there complete or not at all."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from aioir.errors import ImageWriteError

__all__ = ["write_bytes_atomically"]


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
