"""The size limit every decoder checks from an image's header, before it decodes the pixels."""

from __future__ import annotations

from pathlib import Path

from aioir.errors import ImageReadError

__all__ = ["MAX_PIXELS", "check_size"]

MAX_PIXELS: int = 400_000_000
"""Largest image (width × height) :func:`~aioir.io.load_image` decodes; larger ones raise
ImageReadError."""


def check_size(width: int, height: int, path: Path) -> None:
    """Raise ImageReadError for an image without pixels or larger than :data:`MAX_PIXELS`."""
    if width <= 0 or height <= 0:
        raise ImageReadError(f"{path}: image has no pixels ({width}×{height})")
    if width * height > MAX_PIXELS:
        raise ImageReadError(
            f"{path}: image too large ({width}×{height} pixels, limit {MAX_PIXELS})"
        )
