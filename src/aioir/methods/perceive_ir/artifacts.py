"""What a saved model keeps beside its weights for Perceive-IR (registered when the package
loads): ``quality_perceiver`` — the three-tier perceiver a stage-1 run trained
(``quality_perceiver.safetensors``), attached as ``model.quality_perceiver``
(a :class:`PerceiverArtifact`, so its weights stay out of the network's state dict)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from aioir.methods.perceive_ir.perceiver import (
    PERCEIVER_FILE,
    QualityPerceiver,
    load_perceiver,
    save_perceiver,
)
from aioir.models.artifacts import ModelArtifact, register_artifact

__all__ = ["QUALITY_PERCEIVER", "PerceiverArtifact"]


@dataclass
class PerceiverArtifact:
    """A quality perceiver carried by a network (not one of its submodules)."""

    perceiver: QualityPerceiver


def _save(model: nn.Module, folder: Path) -> str | None:
    held = getattr(model, "quality_perceiver", None)
    if not isinstance(held, PerceiverArtifact):
        return None
    save_perceiver(held.perceiver, folder / PERCEIVER_FILE)
    return PERCEIVER_FILE


def _load(model: nn.Module, folder: Path, value: Any) -> None:
    model.quality_perceiver = PerceiverArtifact(load_perceiver(folder / str(value)))


QUALITY_PERCEIVER = register_artifact(ModelArtifact("quality_perceiver", _save, _load))
