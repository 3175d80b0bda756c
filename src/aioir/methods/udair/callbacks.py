"""The ``epoch_mean`` source bank callback (Lightning).

:class:`SourceBankCallback` accumulates the ``epoch_mean`` bank from the ``g``'s of the
``forward_features`` output the module returns, snapshots it at each validation (kept when the
monitored score is a new best), and saves its whole state — running sums included, for exact
resume — under the checkpoint key ``"source_bank"``.
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor

from aioir.methods.udair.bank_accumulation import LEVELS, SourceBankAccumulator

__all__ = ["SOURCE_BANK_KEY", "SourceBankCallback"]

SOURCE_BANK_KEY = "source_bank"


class SourceBankCallback(pl.Callback):
    """``epoch_mean`` source bank (see the module docstring).

    ``mode="final_pass"`` only marks the run: the bank is computed at export time from the
    exported weights (:func:`aioir.methods.udair.bank_accumulation.compute_final_pass`).
    """

    def __init__(
        self, task_names: list[str], mode: str = "final_pass", monitor: str = "val/psnr"
    ) -> None:
        self.task_names = list(task_names)
        self.mode = mode
        self.monitor = monitor
        self.accumulator = SourceBankAccumulator(self.task_names)
        self.best: dict[str, Tensor] | None = None
        self.best_score: float | None = None
        self.best_step: int | None = None

    @property
    def collects(self) -> bool:
        return self.mode == "epoch_mean"

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if self.collects and isinstance(outputs, dict) and "features" in outputs:
            out = outputs["features"]
            self.accumulator.add_task_ordered((out.g4.detach(), out.g3.detach(), out.g2.detach()))

    def _snapshot(self, trainer: pl.Trainer) -> dict[str, Tensor] | None:
        """Mean over all ranks' accumulated steps (collective under DDP), then reset."""
        acc = self.accumulator
        device = trainer.strategy.root_device
        if acc.empty:
            has = torch.zeros((), device=device)
        else:
            has = torch.ones((), device=device)
        has = trainer.strategy.reduce(has, reduce_op="sum")
        if float(has) != trainer.world_size:
            acc.reset()
            return None
        sums = {k: trainer.strategy.reduce(acc.sums[k].to(device), reduce_op="sum") for k in LEVELS}
        counts = trainer.strategy.reduce(acc.counts.to(device), reduce_op="sum")
        acc.reset()
        return {k: (v / counts.view(-1, 1, 1, 1)).float().cpu() for k, v in sums.items()}

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self.collects or trainer.sanity_checking:
            return
        snap = self._snapshot(trainer)
        score = trainer.callback_metrics.get(self.monitor)
        if snap is None or score is None:
            return
        value = float(score)
        if self.best_score is None or value > self.best_score:
            self.best, self.best_score, self.best_step = snap, value, trainer.global_step

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # no validation ever ran: the bank is the mean since the start
        if self.collects and self.best is None:
            self.best = self._snapshot(trainer)
            self.best_step = trainer.global_step

    def state_dict(self) -> dict[str, Any]:
        return {}

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint[SOURCE_BANK_KEY] = {
            "mode": self.mode,
            "task_names": list(self.task_names),
            "accumulator": self.accumulator.state_dict(),
            "bank": None if self.best is None else {k: v.clone() for k, v in self.best.items()},
            "best_score": self.best_score,
            "best_step": self.best_step,
        }

    def on_load_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        state = checkpoint.get(SOURCE_BANK_KEY)
        if state is None:
            return
        self.accumulator.load_state_dict(state["accumulator"])
        self.best = state["bank"]
        self.best_score = state["best_score"]
        self.best_step = state["best_step"]
