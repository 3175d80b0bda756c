"""Wrappers: a model that adds a stage around another restorer (NAFNet's ``Local`` style).

A wrapper is a plain :class:`RestorerWrapper` subclass holding the wrapped network as
``self.restorer``; it changes what the restorer's output becomes, never the restorer itself.
Whatever belongs to the *network* — a method's saved-model artefacts (UDAIR's source bank) and
its test-time adaptation — is attached to and run on :func:`unwrap`'s result, while restoring
runs the whole wrapper.

Saved form: a wrapper class is registered under a name (:func:`register_wrapper`) and
describes itself by :meth:`RestorerWrapper.wrapper_options` (JSON); a saved model's
``config.json`` lists ``"wrappers": [{"name": …, **options}, …]``, innermost first, beside the
network's ``architecture``/``preset``/``overrides`` (:func:`wrapper_specs`), and
:func:`wrap_model` rebuilds them. State-dict keys are the modules' own: the network's under
``restorer.``, each wrapper's modules under their attribute names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, TypeVar

from torch import nn

from aioir.errors import ConfigError
from aioir.models.protocols import InferenceConfigurable
from aioir.plugins import load_methods

__all__ = [
    "RestorerWrapper", "options_taker", "register_wrapper", "unwrap", "wrap_model", "wrapper_specs",
]  # fmt: skip

W = TypeVar("W", bound="type[RestorerWrapper]")


class RestorerWrapper(nn.Module):
    """Base class of wrappers around a restorer (``self.restorer``).

    Subclasses registered with :func:`register_wrapper` are built as
    ``cls(restorer, **options)`` and return those ``options`` from :meth:`wrapper_options`.
    """

    #: the name ``config.json`` lists it under (set by :func:`register_wrapper`)
    wrapper_name: ClassVar[str] = ""

    def __init__(self, restorer: nn.Module) -> None:
        super().__init__()
        self.restorer = restorer

    @property
    def size_multiple(self) -> int:
        """The wrapped restorer's input-size multiple."""
        return int(getattr(self.restorer, "size_multiple", 1))

    def wrapper_options(self) -> dict[str, Any]:
        """The JSON keyword arguments that rebuild this wrapper around the same restorer."""
        return {}

    @property
    def aioir_config(self) -> dict[str, Any]:
        """The network's ``aioir_config`` (:func:`aioir.models.create_model`) with
        ``"wrappers"`` (:func:`wrapper_specs`); absent (``AttributeError``) when the network
        has none."""
        network = getattr(unwrap(self), "aioir_config", None)
        if network is None:
            raise AttributeError(f"{type(unwrap(self)).__name__} has no aioir_config")
        return {**network, "wrappers": wrapper_specs(self)}


_WRAPPERS: dict[str, type[RestorerWrapper]] = {}


def register_wrapper(name: str) -> Callable[[W], W]:
    """Register the decorated :class:`RestorerWrapper` subclass under ``name``."""

    def decorator(cls: W) -> W:
        if _WRAPPERS.get(name, cls) is not cls:
            raise ValueError(f"a wrapper {name!r} is already registered")
        cls.wrapper_name = name
        _WRAPPERS[name] = cls
        return cls

    return decorator


def unwrap(model: nn.Module) -> nn.Module:
    """The innermost restorer of ``model`` (``model`` itself when it wraps nothing)."""
    while isinstance(model, RestorerWrapper):
        model = model.restorer
    return model


def options_taker(model: nn.Module) -> InferenceConfigurable | None:
    """The outermost of ``model`` and the restorers it wraps that takes inference options
    (:class:`~aioir.models.protocols.InferenceConfigurable`; a wrapper that does passes its
    network what it does not use), or ``None``."""
    while not isinstance(model, InferenceConfigurable):
        if not isinstance(model, RestorerWrapper):
            return None
        model = model.restorer
    return model


def wrapper_specs(model: nn.Module) -> list[dict[str, Any]]:
    """``[{"name", **options}, …]`` of the wrappers around ``model``'s network, innermost
    first (empty for a plain network)."""
    specs = []
    while isinstance(model, RestorerWrapper):
        if not model.wrapper_name:
            raise ConfigError(f"{type(model).__name__} is not a registered wrapper")
        specs.append({"name": model.wrapper_name, **model.wrapper_options()})
        model = model.restorer
    return specs[::-1]


def wrap_model(network: nn.Module, specs: Sequence[Mapping[str, Any]]) -> nn.Module:
    """``network`` inside the wrappers ``specs`` describe (innermost first;
    :func:`wrapper_specs`). Raises :class:`ConfigError` for an unknown name or bad options."""
    load_methods()  # method packages may register wrappers too
    model = network
    for spec in specs:
        options = dict(spec)
        name = options.pop("name", None)
        cls = _WRAPPERS.get(str(name))
        if cls is None:
            known = ", ".join(sorted(_WRAPPERS)) or "none"
            raise ConfigError(f"unknown model wrapper {name!r} (known: {known})")
        try:
            model = cls(model, **options)
        except TypeError as exc:
            raise ConfigError(f"invalid options for the {name!r} wrapper: {exc}") from exc
    return model
