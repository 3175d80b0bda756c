"""What a saved model keeps beside its weights for Perceive-IR (registered when the package
loads), attached as plain holders so their weights stay out of the network's state dict:

* ``quality_perceiver`` — the three-tier perceiver a stage-1 run trained
  (``quality_perceiver.safetensors``), as ``model.quality_perceiver`` (:class:`PerceiverArtifact`);
* ``quality_prompts`` — the CLIP quality prompts' context a stage-1 run learnt
  (``quality_prompts.safetensors``), as ``model.quality_prompts`` (:class:`PromptsArtifact`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from aioir.methods.perceive_ir.perceiver import (
    PERCEIVER_FILE,
    QualityPerceiver,
    load_perceiver,
    save_perceiver,
)
from aioir.methods.perceive_ir.quality_prompts import (
    PROMPTS_FILE,
    read_quality_prompts,
    save_quality_prompts,
)
from aioir.models.artifacts import ModelArtifact, register_artifact

__all__ = ["QUALITY_PERCEIVER", "QUALITY_PROMPTS", "PerceiverArtifact", "PromptsArtifact"]


@dataclass
class PromptsArtifact:
    """Learnt quality-prompt context (``3×n×width``) and its class words."""

    context: Tensor
    words: tuple[str, ...]


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


def _save_prompts(model: nn.Module, folder: Path) -> str | None:
    held = getattr(model, "quality_prompts", None)
    if not isinstance(held, PromptsArtifact):
        return None
    save_quality_prompts(held.context, held.words, folder / PROMPTS_FILE)
    return PROMPTS_FILE


def _load_prompts(model: nn.Module, folder: Path, value: Any) -> None:
    model.quality_prompts = PromptsArtifact(*read_quality_prompts(folder / str(value)))


QUALITY_PROMPTS = register_artifact(ModelArtifact("quality_prompts", _save_prompts, _load_prompts))
