"""aioir — All-in-One Image Restoration.

One model, one set of weights, restoring noise, rain, haze, low light, blur and underwater colour
cast. The top-level namespace is lazy: ``import aioir`` imports nothing heavy until an attribute
is used, so the command line starts fast and no module has import-time side effects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aioir._lazy import lazy_attributes
from aioir.errors import (
    AioirError,
    CheckpointError,
    ConfigError,
    DatasetLayoutError,
    ImageReadError,
    ImageWriteError,
)

__version__ = "0.1.0.dev0"

# public name -> module that defines it (imported on first access)
_LAZY: dict[str, str] = {
    "read_image": "aioir.io",
    "write_image": "aioir.io",
    "load_image": "aioir.io",
    "save_image": "aioir.io",
    "psnr": "aioir.metrics",
    "ssim": "aioir.metrics",
    "load_model": "aioir.models",
    "list_models": "aioir.models",
}

__all__ = [
    "AioirError",
    "CheckpointError",
    "ConfigError",
    "DatasetLayoutError",
    "ImageReadError",
    "ImageWriteError",
    "__version__",
    "list_models",
    "load_image",
    "load_model",
    "psnr",
    "read_image",
    "restore",
    "save_image",
    "ssim",
    "write_image",
]


#: public subpackages importable as attributes (``aioir.restore(image)``: the package is callable)
_SUBPACKAGES = frozenset({"restore"})

__getattr__, __dir__ = lazy_attributes(
    __name__, {**_LAZY, **{name: f"aioir.{name}" for name in _SUBPACKAGES}}
)


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from aioir.io import load_image, read_image, save_image, write_image
    from aioir.metrics import psnr, ssim
    from aioir.models import list_models, load_model
