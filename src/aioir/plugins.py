"""Method packages plug into the shared layers through Python entry points.

A method package (``aioir.methods.<name>``, or a third-party one) declares itself in its
distribution's metadata, e.g. in ``pyproject.toml``::

    [project.entry-points."aioir.methods"]
    udair = "aioir.methods.udair"            # imported on first need: registers its models,
                                             # artefacts, test-time adapters, training extras
    [project.entry-points."aioir.commands"]
    udair = "aioir.methods.udair.cli"        # a module with register(subparsers) (light imports)

The shared layers never import a method package by name: the model registry, the test-time
adapter registry, the saved-model artefact registry and the training-extras registry call
:func:`load_methods` before they answer, and the command line calls :func:`command_modules`.
Loading is explicit and happens once; importing :mod:`aioir` loads nothing.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from importlib.metadata import entry_points
from types import ModuleType
from typing import Generic, TypeVar

T = TypeVar("T")

__all__ = ["COMMANDS_GROUP", "METHODS_GROUP", "Registry", "command_modules", "load_methods"]

#: Entry-point group of the modules that register a method's pieces when imported.
METHODS_GROUP = "aioir.methods"
#: Entry-point group of the command-line modules (``register(subparsers)``).
COMMANDS_GROUP = "aioir.commands"

_loaded: dict[str, ModuleType] | None = None


def _modules(group: str) -> dict[str, str]:
    found = {ep.name: ep.value for ep in entry_points(group=group)}
    return dict(sorted(found.items()))


def load_methods() -> dict[str, ModuleType]:
    """Import every installed method package once; returns them by entry-point name."""
    global _loaded
    if _loaded is None:
        modules: dict[str, ModuleType] = {}
        for name, value in _modules(METHODS_GROUP).items():
            modules[name] = importlib.import_module(value)
        _loaded = modules
    return _loaded


def command_modules() -> list[ModuleType]:
    """The installed methods' command-line modules, by entry-point name."""
    return [importlib.import_module(value) for value in _modules(COMMANDS_GROUP).values()]


class Registry(Generic[T]):
    """Named entries a method package fills when it loads; every read loads the methods first.

    ``what`` names the kind of entry in errors (``"model artefact"``). Registering a key twice
    with a different entry is an error; registering the same entry again is harmless.
    """

    def __init__(self, what: str) -> None:
        self.what = what
        self._entries: dict[str, T] = {}

    def register(self, key: str, entry: T) -> T:
        """Add ``entry`` under ``key``; returns it."""
        if key in self._entries and self._entries[key] != entry:
            raise ValueError(f"a {self.what} {key!r} is already registered")
        self._entries[key] = entry
        return entry

    def unregister(self, key: str) -> None:
        """Remove ``key`` (tests that register temporary entries)."""
        self._entries.pop(key, None)

    def get(self, key: str) -> T | None:
        """The entry under ``key``, or ``None``."""
        load_methods()
        return self._entries.get(key)

    def __iter__(self) -> Iterator[T]:
        """The entries, by key."""
        load_methods()
        return iter([self._entries[k] for k in sorted(self._entries)])
