"""Wrappers: a model that adds a stage around another restorer (NAFNet's ``Local`` style).

A wrapper is a plain :class:`RestorerWrapper` subclass holding the wrapped network as
``self.restorer``; it changes what the restorer's output becomes, never the restorer itself.
Whatever belongs to the *network* — a method's saved-model artefacts (UDAIR's source bank) and
its test-time adaptation — is attached to and run on :func:`unwrap`'s result, while restoring
runs the whole wrapper.
"""

from __future__ import annotations

from torch import nn

__all__ = ["RestorerWrapper", "unwrap"]


class RestorerWrapper(nn.Module):
    """Base class of wrappers around a restorer (``self.restorer``)."""

    def __init__(self, restorer: nn.Module) -> None:
        super().__init__()
        self.restorer = restorer

    @property
    def size_multiple(self) -> int:
        """The wrapped restorer's input-size multiple."""
        return int(getattr(self.restorer, "size_multiple", 1))


def unwrap(model: nn.Module) -> nn.Module:
    """The innermost restorer of ``model`` (``model`` itself when it wraps nothing)."""
    while isinstance(model, RestorerWrapper):
        model = model.restorer
    return model
