"""UDAIR's additions to the one training loop: the source bank (a training extra).

The config section ``source_bank`` (:class:`SourceBankConfig`) switches it; by default every
UDAIR run gets one. At export, :class:`SourceBankExtra` computes the bank — ``final_pass``: one
eval-mode pass of the exported weights over fixed training crops, with the per-task row
statistics; ``epoch_mean``: the authors' running mean kept at the best validation — and
attaches it to the exported network as ``model.source_bank``, which the ``source_bank``
artefact writes beside the weights.

Registered when the package loads; Lightning is imported only when a run builds the extra.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from torch import nn

from aioir.engine.extras import (
    TrainingContext,
    TrainingExtra,
    TrainingExtraSpec,
    register_training_extra,
)
from aioir.errors import ConfigError
from aioir.methods.udair.bank import BANK_FILE, SourceBank
from aioir.methods.udair.bank_accumulation import compute_source_bank
from aioir.methods.udair.model import UDAIRBase
from aioir.models.wrappers import unwrap

__all__ = [
    "SOURCE_BANK_EXTRA",
    "SourceBankConfig",
    "SourceBankExtra",
]

BANK_MODES = ("final_pass", "epoch_mean")


@dataclasses.dataclass
class SourceBankConfig:
    """The ``source_bank`` section: UDAIR's source bank (per-task embeddings g4/g3/g2).

    ``enabled``: ``None`` = when the model is a UDAIR (any backbone). ``mode``: ``final_pass``
    (default: one eval-mode pass over fixed training crops with the exported weights) or
    ``epoch_mean`` (the authors: mean over the training steps since the last validation, kept
    at the best one).
    ``items_per_task``: crops per task in the final pass; ``patch_size``: their size (default
    ``data.patch_size`` — the bank's spatial size is tied to it).
    """

    enabled: bool | None = None
    mode: str = "final_pass"
    items_per_task: int = 64
    patch_size: int | None = None
    batch_size: int = 8

    def validate(self, where: str) -> None:
        """ConfigError for a value the types allow but the bank does not."""
        if self.mode not in BANK_MODES:
            raise ConfigError(f"{where}.mode: expected 'final_pass' or 'epoch_mean'")


class SourceBankExtra(TrainingExtra):
    """The source bank of one run: the ``epoch_mean`` callback while training, the bank at
    export."""

    def __init__(self, ctx: TrainingContext) -> None:
        from aioir.methods.udair.callbacks import SourceBankCallback

        self.config: SourceBankConfig = ctx.section
        self.train_config = ctx.config
        self.datamodule = ctx.datamodule
        self.task_names = list(ctx.task_names)
        monitor = f"val/{ctx.config.validation.monitor}"
        self.callback = SourceBankCallback(self.task_names, self.config.mode, monitor)
        self.wants_features = self.callback.collects

    def callbacks(self) -> list[Any]:
        return [self.callback]

    def export(
        self, model: nn.Module, checkpoint: Mapping[str, Any], record: dict[str, Any]
    ) -> None:
        sb, data = self.config, self.train_config.data
        bank: SourceBank | None = None
        if sb.mode == "final_pass":  # mean maps + the per-task row statistics (format 2)
            patch = sb.patch_size or data.patch_size
            loader = self.datamodule.bank_dataloader(sb.items_per_task, patch, sb.batch_size)
            bank = compute_source_bank(
                model, loader, self.task_names, metadata={"patch_size": patch}
            )
            meta = {k: bank.metadata[k] for k in ("mode", "patch_size", "count", "statistics")}
        else:
            from aioir.methods.udair.callbacks import SOURCE_BANK_KEY

            state = checkpoint.get(SOURCE_BANK_KEY) or {}
            meta = {
                "mode": "epoch_mean",
                "patch_size": data.patch_size,
                "step": state.get("best_step"),
            }
            if state.get("bank") is not None:
                bank = SourceBank(state["bank"], self.task_names, meta)
        if bank is not None:
            unwrap(model).source_bank = bank
            record["source_bank"] = {"file": BANK_FILE, **meta}


def _build(ctx: TrainingContext) -> SourceBankExtra | None:
    enabled: bool | None = ctx.section.enabled
    is_udair = isinstance(unwrap(ctx.model), UDAIRBase)
    if enabled and not is_udair:
        raise ConfigError(f"source_bank.enabled: {type(ctx.model).__name__} has no source bank")
    if not (is_udair if enabled is None else enabled):
        return None
    return SourceBankExtra(ctx)


SOURCE_BANK_EXTRA = register_training_extra(
    TrainingExtraSpec("source_bank", SourceBankConfig, _build, "UDAIR's source bank")
)
