"""Restoring images with a trained model: the API, tiling, batches of files, export.

>>> import aioir.restore
>>> out = aioir.restore.restore(image, model="runs/udair-5task")   # numpy / PIL / torch
>>> out = aioir.restore(image, model="runs/udair-5task")           # the package is callable
>>> restorer = aioir.restore.Restorer("udair", checkpoint="udair.safetensors")

Modules: :mod:`~aioir.restore.api` (:class:`Restorer`, :func:`restore`),
:mod:`~aioir.restore.tiling` (tiled inference, memory heuristic),
:mod:`~aioir.restore.resolve` (``--model`` / ``--checkpoint`` → model),
:mod:`~aioir.restore.adaptation` (the test-time adaptation hook),
:mod:`~aioir.restore.batch` (many files: inputs, output names, prefetch),
:mod:`~aioir.restore.export` (ONNX / TorchScript).

Names are imported lazily, so ``import aioir.restore`` costs nothing until one is used. Because
``aioir.restore`` is this package as well as the function users call, the package module itself
is callable: ``aioir.restore(image, ...)`` is :func:`aioir.restore.api.restore`.
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

from aioir._lazy import lazy_attributes

_LAZY: dict[str, str] = {
    "Restorer": "aioir.restore.api",
    "restore": "aioir.restore.api",
    "compare_image": "aioir.restore.api",
    "resolve_device": "aioir.restore.api",
    "resolve_model": "aioir.restore.resolve",
    "shipped_weights": "aioir.restore.resolve",
    "TestTimeAdapter": "aioir.restore.adaptation",
    "register_test_time_adapter": "aioir.restore.adaptation",
    "get_test_time_adapter": "aioir.restore.adaptation",
    "tiled_forward": "aioir.restore.tiling",
    "choose_tile": "aioir.restore.tiling",
    "export_model": "aioir.restore.export",
}

__all__ = [
    "Restorer",
    "TestTimeAdapter",
    "choose_tile",
    "compare_image",
    "export_model",
    "get_test_time_adapter",
    "register_test_time_adapter",
    "resolve_device",
    "resolve_model",
    "restore",
    "shipped_weights",
    "tiled_forward",
]


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)


def _package_doc(module: types.ModuleType) -> str | None:
    """``help(aioir.restore)`` and ``aioir.restore.__doc__``: the function users call first (its
    signature and docstring, imported only when asked for), then the package's own page."""
    own = vars(module).get("__doc__")
    try:
        import inspect

        from aioir.restore.api import restore
    except ImportError:  # pragma: no cover - a broken install: the package page alone
        return own
    signature = inspect.signature(restore)
    plain = signature.replace(
        parameters=[p.replace(annotation=p.empty) for p in signature.parameters.values()],
        return_annotation=signature.empty,
    )
    call = f"aioir.restore{plain}"
    function = inspect.getdoc(restore) or ""
    package = f"The package aioir.restore:\n\n{own}" if own else ""
    return f"{call}\n\n{function}\n\n{package}".rstrip() + "\n"


class _CallablePackage(types.ModuleType):
    # Makes ``aioir.restore(image, ...)`` call :func:`aioir.restore.api.restore`; ``__doc__``
    # starts with that function's documentation, so ``help(aioir.restore)`` shows it first
    # (pydoc renders any module as a package page; its description is this ``__doc__``).

    def __call__(self, image: Any, *args: Any, **kwargs: Any) -> Any:
        from aioir.restore.api import restore

        return restore(image, *args, **kwargs)

    @property
    def __doc__(self) -> str | None:
        return _package_doc(self)

    @__doc__.setter
    def __doc__(self, value: str | None) -> None:
        vars(self)["__doc__"] = value


sys.modules[__name__].__class__ = _CallablePackage

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from aioir.restore.adaptation import (
        TestTimeAdapter,
        get_test_time_adapter,
        register_test_time_adapter,
    )
    from aioir.restore.api import Restorer, compare_image, resolve_device, restore
    from aioir.restore.export import export_model
    from aioir.restore.resolve import resolve_model, shipped_weights
    from aioir.restore.tiling import choose_tile, tiled_forward
