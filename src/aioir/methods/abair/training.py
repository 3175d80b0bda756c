"""ABAIR's three training phases as one training extra (the ``abair`` config section).

``abair.phase`` says what a run trains (``configs/abair/``):

* ``pretrain`` — phase I: the whole network (and its segmentation head, trained by the
  ``abair_segmentation`` loss on the degradation-CutMix label map, ``data.cutmix: true``). The
  head is dropped from the exported restorer.
* ``adapters`` — phase II: only the LoRA adapters of ``train_tasks`` (default: every data
  task); everything else frozen. Each sample uses the adapter of its own task (oracle weights
  set per batch), so one batch trains several adapters at once, or one task at a time.
* ``estimator`` — phase III: only the estimator (``abair_estimator`` loss); the adapters are
  blended by its probabilities, backbone and adapters frozen.

``abair.base`` (a saved ABAIR folder) initialises the run: every tensor whose name and shape
match is copied, the adapters and estimator rows by task name — so a model with one more task
(``model.overrides.tasks``) starts from a trained one with the old adapters bit for bit (the
unseen-task extension). Registered when the package loads; Lightning is imported only when a
run builds the extra.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from aioir.engine.extras import (
    TrainingContext,
    TrainingExtra,
    TrainingExtraSpec,
    register_training_extra,
)
from aioir.errors import ConfigError
from aioir.methods.abair.model import ABAIR
from aioir.models.wrappers import unwrap
from aioir.nn.adapters import mark_only_lora_trainable
from aioir.tasks import split_composite

__all__ = ["ABAIR_EXTRA", "PHASES", "ABAIRTrainingConfig", "ABAIRTrainingExtra", "copy_from_saved"]

PHASES = ("pretrain", "adapters", "estimator")


@dataclasses.dataclass
class ABAIRTrainingConfig:
    """The ``abair`` section: ``phase`` (``""`` = no ABAIR phase), ``base`` (a saved ABAIR to
    start from) and, for the ``adapters`` phase, ``train_tasks`` (default: the data tasks)."""

    phase: str = ""
    base: str | None = None
    train_tasks: list[str] | None = None

    def validate(self, where: str) -> None:
        """ConfigError for an unknown phase or a misplaced option."""
        if self.phase and self.phase not in PHASES:
            raise ConfigError(f"{where}.phase: expected one of {', '.join(PHASES)}")
        if self.train_tasks is not None and self.phase != "adapters":
            raise ConfigError(f"{where}.train_tasks: only with phase: adapters")


def _saved_tasks(folder: Path) -> list[str]:
    from aioir.models.checkpoints import read_pretrained_config

    config = read_pretrained_config(folder)
    if config.get("architecture") != "abair":
        raise ConfigError(f"abair.base: {folder} is not a saved ABAIR model")
    overrides = config.get("overrides", {})
    if "tasks" in overrides:
        return list(overrides["tasks"])
    from aioir.models.registry import get_model_info

    preset = config.get("preset", "paper")
    info = get_model_info("abair" if preset == "paper" else f"abair-{preset}")
    return list(getattr(info.factory(), "tasks", []))


def copy_from_saved(model: ABAIR, folder: str | Path) -> list[str]:
    """Copy a saved ABAIR's weights into ``model`` where names and shapes match; adapters and
    estimator rows go by task name. Returns the tasks whose adapters were copied."""
    from aioir.models.checkpoints import read_state_dict

    path = Path(folder)
    base_tasks = _saved_tasks(path)
    state = read_state_dict(path)
    own = model.state_dict()
    moved: dict[str, torch.Tensor] = {}
    shared = [t for t in base_tasks if t in model.tasks]
    for key, value in state.items():
        parts = key.split(".")
        if len(parts) >= 2 and parts[-2] in ("lora_A", "lora_B") and parts[-1].isdigit():
            task = base_tasks[int(parts[-1])]
            if task not in model.tasks:
                continue
            key = ".".join([*parts[:-1], str(model.tasks.index(task))])
        elif key.startswith("estimator.head."):
            rows = torch.tensor([model.tasks.index(t) for t in shared])
            target = own[key].clone()
            target[rows] = value[torch.tensor([base_tasks.index(t) for t in shared])]
            moved[key] = target
            continue
        if key not in own:
            continue  # e.g. a segmentation head the restorer no longer has
        if own[key].shape != value.shape:
            raise ConfigError(
                f"abair.base: {path}: {key} has shape {tuple(value.shape)}, the model "
                f"{tuple(own[key].shape)}"
            )
        moved[key] = value
    model.load_state_dict(moved, strict=False)
    return shared


class ABAIRTrainingExtra(TrainingExtra):
    """One run's phase: what trains, the per-sample adapter weights, the export."""

    def __init__(self, ctx: TrainingContext) -> None:
        section: ABAIRTrainingConfig = ctx.section
        model = unwrap(ctx.model)
        if not isinstance(model, ABAIR):
            raise ConfigError(f"abair.phase: the model is a {type(model).__name__}, not an ABAIR")
        self.phase = section.phase
        self.callback: Any = None
        if section.base:
            copy_from_saved(model, section.base)
        data_tasks = list(ctx.task_names)
        if self.phase == "pretrain":
            return
        unknown = [p for t in data_tasks for p in split_composite(t) if p not in model.tasks]
        if unknown:
            raise ConfigError(
                f"abair.phase: data task {unknown[0]!r} has no adapter "
                f"(model tasks: {', '.join(model.tasks) or 'none'})"
            )
        if self.phase == "adapters":
            train = section.train_tasks if section.train_tasks is not None else data_tasks
            parts = dict.fromkeys(p for t in train for p in split_composite(t))
            mark_only_lora_trainable(model, [model.task_index(t) for t in parts])
            from aioir.methods.abair.callbacks import OracleAdapterWeights

            # composite data tasks (haze+rain) use all their adapters at weight 1
            rows = torch.cat([model.one_hot(t) for t in data_tasks])
            self.callback = OracleAdapterWeights(rows)
        else:  # estimator
            assert model.estimator is not None
            for name, p in model.named_parameters():
                p.requires_grad_(name.startswith("estimator."))

    def callbacks(self) -> list[Any]:
        return [self.callback] if self.callback is not None else []

    def export(
        self, model: nn.Module, checkpoint: Mapping[str, Any], record: dict[str, Any]
    ) -> None:
        network = unwrap(model)
        record["abair_phase"] = self.phase
        if isinstance(network, ABAIR):
            network.task_weights = None
            if self.phase == "pretrain":
                network.drop_segmentation_head()


def _build(ctx: TrainingContext) -> TrainingExtra | None:
    return ABAIRTrainingExtra(ctx) if ctx.section.phase else None


ABAIR_EXTRA = register_training_extra(
    TrainingExtraSpec(
        "abair", ABAIRTrainingConfig, _build, "ABAIR's training phase (pretrain/adapters/estimator)"
    )
)
