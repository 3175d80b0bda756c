"""What an ABAIR saved model keeps beyond its weights and config.

The adapters and the estimator are weights (``model.safetensors``) and the task names are a
constructor argument (``config.json``'s ``overrides.tasks``), so a saved model rebuilds with
the right shapes. The ``adapter_mode`` artefact records the inference mode the model was saved
with (``{"mode": ..., "task": ...}``) and sets it again on load. A model with an adapter merged
into its weights is refused: its weights would no longer be the backbone's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from aioir.errors import ConfigError
from aioir.models.artifacts import ModelArtifact, register_artifact

__all__ = ["ADAPTER_MODE"]


def _save(model: nn.Module, folder: Path) -> Any:
    from aioir.methods.abair.model import ABAIR

    if not isinstance(model, ABAIR) or not model.tasks:
        return None
    if model.merged_task is not None:
        raise ConfigError(
            f"{folder.name}: the {model.merged_task!r} adapter is merged into the weights; "
            "unmerge it before saving"
        )
    return {"mode": model.adapter_mode, "task": model.oracle_task}


def _load(model: nn.Module, folder: Path, value: Any) -> None:
    from aioir.methods.abair.model import ABAIR

    if not isinstance(model, ABAIR):
        raise ConfigError(f"{folder}: config names an adapter mode but the model is no ABAIR")
    if not isinstance(value, dict) or "mode" not in value:
        raise ConfigError(f"{folder}: adapter_mode must be {{mode, task}}, got {value!r}")
    model.set_inference_options(adapter_mode=value["mode"], task=value.get("task"))


ADAPTER_MODE = register_artifact(ModelArtifact("adapter_mode", _save, _load))
