"""aioir — All-in-One Image Restoration.

One model, one set of weights, restoring noise, rain, haze, low light, blur and underwater colour
cast. The top-level namespace is lazy: ``import aioir`` imports nothing heavy until an attribute
is used, so the command line starts fast and no module has import-time side effects.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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


#: public subpackages importable as attributes (``aioir.restore(image)`` — the package is callable)
_SUBPACKAGES = frozenset({"restore"})


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module(f"aioir.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'aioir' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | _SUBPACKAGES)


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from aioir.io import load_image, read_image, save_image, write_image
    from aioir.metrics import psnr, ssim
    from aioir.models import list_models, load_model
