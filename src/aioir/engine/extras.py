"""Training extras: how a method adds to the one training loop without the engine naming it.

A method package registers a :class:`TrainingExtraSpec` with :func:`register_training_extra`:
a top-level config *section* (its own dataclass, parsed and checked like every other section,
with ``--set section.key=value`` overrides), and a ``build`` function that, given the run
(:class:`TrainingContext`), returns a :class:`TrainingExtra` — or ``None`` when it does not
apply to this model/config. A :class:`TrainingExtra` can

* add Lightning callbacks (:meth:`TrainingExtra.callbacks`);
* ask for the model's ``forward_features`` output in every training step's outputs
  (``wants_features``: the step returns ``{"loss", "features"}`` for its callbacks);
* attach saved-model artefacts to the exported network and add to the training record
  (:meth:`TrainingExtra.export`), which :func:`aioir.models.save_model` then writes.

UDAIR's source bank is one (``aioir.methods.udair.training``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from aioir.plugins import Registry

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "EXTRAS",
    "TrainingContext",
    "TrainingExtra",
    "TrainingExtraSpec",
    "get_training_extra",
    "list_training_extras",
    "register_training_extra",
]


@dataclasses.dataclass
class TrainingContext:
    """What an extra may look at when it is built: the whole config, its own section, the
    network being trained, the data module and the task names (task-id order)."""

    config: Any
    section: Any
    model: nn.Module
    datamodule: Any
    task_names: list[str]


class TrainingExtra:
    """A method's additions to one training run (override what you need)."""

    #: the training step returns the model's ``forward_features`` output as ``"features"``
    wants_features: bool = False

    def callbacks(self) -> list[Any]:
        """Lightning callbacks to add to the trainer."""
        return []

    def export(
        self, model: nn.Module, checkpoint: Mapping[str, Any], record: dict[str, Any]
    ) -> None:
        """Before the export is written: attach artefacts to ``model`` (the exported network,
        loaded from ``checkpoint``) and add what the run should record to ``record``."""


@dataclasses.dataclass(frozen=True)
class TrainingExtraSpec:
    """A registered extra: its config ``section`` name and dataclass, and its ``build``."""

    section: str
    config_type: type
    build: Callable[[TrainingContext], TrainingExtra | None]
    description: str = ""


EXTRAS: Registry[TrainingExtraSpec] = Registry("training extra section")


def register_training_extra(spec: TrainingExtraSpec) -> TrainingExtraSpec:
    """Register ``spec`` (a method package does this when it is loaded)."""
    if not dataclasses.is_dataclass(spec.config_type):
        raise TypeError(f"training extra {spec.section!r}: config_type must be a dataclass")
    return EXTRAS.register(spec.section, spec)


def list_training_extras() -> list[TrainingExtraSpec]:
    """The registered extras, by section name."""
    return list(EXTRAS)


def get_training_extra(section: str) -> TrainingExtraSpec | None:
    """The extra whose config section is ``section`` (``None`` if there is none)."""
    return EXTRAS.get(section)
