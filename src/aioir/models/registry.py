"""Model registry: named presets of each architecture (timm-style).

A *preset* is a named configuration of an architecture: ``paper`` (the published model, under the
bare architecture name, e.g. ``"udair"``; also ``"udair-paper"``), ``small`` and ``tiny`` (same
components, fewer channels/blocks; ``tiny`` is for tests and CPU smoke runs). Presets are
registered with the :func:`register_model` decorator on a factory ``(**overrides) -> nn.Module``
in the module that defines the architecture: the shared backbone's here, each method package's
when :func:`aioir.plugins.load_methods` imports it (before the first look-up).

:func:`create_model` builds a registered model with keyword overrides and records
``model.aioir_config = {"architecture", "preset", "overrides"}`` so it can be saved with
:func:`aioir.models.checkpoints.save_pretrained` and rebuilt later.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from torch import nn

from aioir.errors import ConfigError
from aioir.plugins import load_methods

__all__ = [
    "ModelInfo",
    "Preset",
    "create_model",
    "get_model_info",
    "list_models",
    "mark_untrained",
    "register_model",
    "register_presets",
    "registered_name",
    "untrained_name",
]

F = TypeVar("F", bound=Callable[..., nn.Module])


@dataclass(frozen=True)
class ModelInfo:
    """A registered model: name, architecture, preset, parameter count, description."""

    name: str
    architecture: str
    preset: str
    parameters: int
    description: str
    factory: Callable[..., nn.Module] = field(repr=False, compare=False)
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Preset:
    """A named configuration of an architecture: constructor arguments plus what it is."""

    kwargs: dict[str, Any]
    parameters: int
    description: str
    #: measured CPU fp32 activation memory per input pixel (``benchmarks/restore_large.py
    #: --bytes-per-pixel``); the tiling heuristic sizes tiles with it (``None``: a safe default)
    inference_bytes_per_pixel: int | None = None


_REGISTRY: dict[str, ModelInfo] = {}
_ALIASES: dict[str, str] = {}


def register_model(
    architecture: str, preset: str, *, parameters: int, description: str
) -> Callable[[F], F]:
    """Register the decorated factory as ``architecture`` / ``preset``.

    The name is the architecture for the ``paper`` preset (alias ``<arch>-paper``) and
    ``<arch>-<preset>`` otherwise. ``parameters`` is the declared count (checked by the tests).
    """

    def decorator(factory: F) -> F:
        name = registered_name(architecture, preset)
        aliases = (f"{architecture}-paper",) if preset == "paper" else ()
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        _REGISTRY[name] = ModelInfo(
            name, architecture, preset, parameters, description, factory, aliases
        )
        for alias in aliases:
            _ALIASES[alias] = name
        return factory

    return decorator


def register_presets(
    architecture: str, cls: Callable[..., nn.Module], presets: dict[str, Preset]
) -> None:
    """Register every preset of ``architecture``: ``cls(**{**preset.kwargs, **overrides})``."""
    for preset_name, preset in presets.items():

        def factory(_preset: Preset = preset, **overrides: Any) -> nn.Module:
            model = cls(**{**_preset.kwargs, **overrides})
            if _preset.inference_bytes_per_pixel is not None and not overrides:
                model.inference_bytes_per_pixel = _preset.inference_bytes_per_pixel
            return model

        factory.__doc__ = f"{architecture} ({preset_name} preset): {preset.description}"
        register_model(
            architecture, preset_name, parameters=preset.parameters, description=preset.description
        )(factory)


def registered_name(architecture: str, preset: str) -> str:
    """The name ``preset`` of ``architecture`` is registered under (the bare architecture for
    ``paper``), as :func:`register_model` names it."""
    return architecture if preset == "paper" else f"{architecture}-{preset}"


def _canonical(name: str) -> str | None:
    load_methods()
    key = name.strip().lower().replace("_", "-")
    if key in _REGISTRY:
        return key
    return _ALIASES.get(key)


def get_model_info(name: str) -> ModelInfo:
    """The :class:`ModelInfo` of a registered name or alias (``ConfigError`` if unknown)."""
    canonical = _canonical(name)
    if canonical is None:
        close = difflib.get_close_matches(name.lower(), list(_REGISTRY) + list(_ALIASES), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"unknown model {name!r}{hint} (known: {', '.join(sorted(_REGISTRY))})")
    return _REGISTRY[canonical]


def is_registered(name: str) -> bool:
    """True if ``name`` is a registered model name or alias."""
    return _canonical(name) is not None


def list_models(architecture: str | None = None) -> list[ModelInfo]:
    """Registered models (optionally of one architecture), sorted by name."""
    load_methods()
    infos = sorted(_REGISTRY.values(), key=lambda i: i.name)
    if architecture is not None:
        infos = [i for i in infos if i.architecture == architecture]
    return infos


def create_model(name: str, **overrides: Any) -> nn.Module:
    """Build a registered model (random weights) with keyword overrides of its preset."""
    info = get_model_info(name)
    try:
        model = info.factory(**overrides)
    except TypeError as exc:
        raise ConfigError(f"invalid override for model {info.name!r}: {exc}") from exc
    model.aioir_config = {
        "architecture": info.architecture,
        "preset": info.preset,
        "overrides": dict(overrides),
    }
    return model


# ------------------------------------------------------------------ random weights
_UNTRAINED_ATTRIBUTE = "aioir_untrained"


def _weights_version(model: nn.Module) -> int | None:
    """The sum of the parameters' in-place version counters: ``load_state_dict`` and every
    optimiser step raise it, moving the model to a device does not (``None`` for inference
    tensors, which have no counter)."""
    try:
        return sum(p._version for p in model.parameters())
    except RuntimeError:
        return None


def mark_untrained(model: nn.Module, name: str) -> None:
    """Record that ``model`` was built from the registered ``name`` with random weights.

    :func:`untrained_name` then reports it until its weights change (loaded or trained), and
    :func:`aioir.restore.resolve_model` refuses to restore with it unless ``allow_untrained``.
    A model without parameters (e.g. ``dark-channel-prior``) is never marked.
    """
    if next(model.parameters(), None) is None:
        return  # nothing to train (a classical method as a module): its "weights" are its code
    version = _weights_version(model)
    if version is not None:
        setattr(model, _UNTRAINED_ATTRIBUTE, (name, version))


def untrained_name(model: nn.Module) -> str | None:
    """The registered name ``model`` was built from when it still has the random weights
    :func:`aioir.models.load_model` gave it (no checkpoint); ``None`` otherwise."""
    mark = getattr(model, _UNTRAINED_ATTRIBUTE, None)
    if not isinstance(mark, tuple):
        return None
    name, version = mark
    return name if _weights_version(model) == version else None
