"""The few exception types users of aioir can catch.

Every error the toolkit raises on purpose derives from :class:`AioirError`. Messages are one line
and name the file (or option) and the problem, so the CLI can print them without a traceback.
"""

from __future__ import annotations

__all__ = [
    "AioirError",
    "CheckpointError",
    "ConfigError",
    "DatasetLayoutError",
    "ImageReadError",
    "ImageWriteError",
]


class AioirError(Exception):
    """Base class of every error aioir raises deliberately."""


class ImageReadError(AioirError):
    """An image file could not be read: missing, empty, truncated, not an image, unsupported."""


class ImageWriteError(AioirError):
    """An image could not be written (e.g. the output exists and overwriting was not asked for)."""


class DatasetLayoutError(AioirError):
    """A dataset folder does not match the layout it was declared to have."""


class CheckpointError(AioirError):
    """A checkpoint or weights file does not fit the model it is loaded into."""


class ConfigError(AioirError):
    """A configuration (YAML, preset, option value) is invalid."""
