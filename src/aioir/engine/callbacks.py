"""Lightning callbacks: weight EMA and UDAIR's source bank.

* :class:`EMACallback` keeps an exponential moving average of the trainable parameters
  (buffers are used as they are, as BasicSR does). Validation runs on the EMA weights, so the
  best checkpoint is chosen by them; the checkpoint stores them under their own key
  ``"ema_state_dict"`` next to the raw weights, and the export uses them.
* :class:`SourceBankCallback` accumulates the ``epoch_mean`` bank (methods.md §2.8) from the
  ``g``'s the module returns, snapshots it at each validation (kept when val PSNR is a new
  best), and saves its whole state — running sums included, for exact resume — under the
  checkpoint key ``"source_bank"``.
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor

from aioir.engine.source_bank import LEVELS, SourceBankAccumulator

__all__ = ["EMA_KEY", "SOURCE_BANK_KEY", "EMACallback", "SourceBankCallback"]

EMA_KEY = "ema_state_dict"
SOURCE_BANK_KEY = "source_bank"


class EMACallback(pl.Callback):
    """EMA of ``pl_module.model``'s trainable parameters, updated after every optimiser step."""

    def __init__(self, decay: float = 0.999) -> None:
        self.decay = float(decay)
        self.ema: dict[str, Tensor] | None = None
        self._backup: dict[str, Tensor] | None = None
        self._last_step = -1

    @staticmethod
    def _params(pl_module: pl.LightningModule) -> dict[str, Tensor]:
        return {k: p for k, p in pl_module.model.named_parameters() if p.requires_grad}

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        params = self._params(pl_module)
        if self.ema is None:
            self.ema = {k: p.detach().float().clone() for k, p in params.items()}
        else:  # restored from a checkpoint
            self.ema = {k: v.to(params[k].device) for k, v in self.ema.items()}
        self._last_step = trainer.global_step

    @torch.no_grad()
    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any
    ) -> None:
        if self.ema is None or trainer.global_step == self._last_step:
            return  # no optimiser step happened (gradient accumulation)
        self._last_step = trainer.global_step
        params = self._params(pl_module)
        ema = [self.ema[k] for k in params]
        raw = [p.detach().float() for p in params.values()]  # no copy for fp32 parameters
        torch._foreach_lerp_(ema, raw, 1.0 - self.decay)  # one fused update, not one per tensor

    def swap_in(self, pl_module: pl.LightningModule) -> None:
        """Replace the parameters by their EMA (keeps a backup; undo with :meth:`swap_out`)."""
        if self.ema is None or self._backup is not None:
            return
        params = self._params(pl_module)
        self._backup = {k: p.detach().clone() for k, p in params.items()}
        with torch.no_grad():
            for k, p in params.items():
                p.copy_(self.ema[k])

    def swap_out(self, pl_module: pl.LightningModule) -> None:
        """Put the raw parameters back after :meth:`swap_in`."""
        if self._backup is None:
            return
        with torch.no_grad():
            for k, p in self._params(pl_module).items():
                p.copy_(self._backup[k])
        self._backup = None

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.swap_in(pl_module)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.swap_out(pl_module)

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        if self.ema is not None:
            checkpoint[EMA_KEY] = {
                f"model.{k}": v.detach().cpu().clone() for k, v in self.ema.items()
            }

    def on_load_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        state = checkpoint.get(EMA_KEY)
        if state is not None:
            self.ema = {k.removeprefix("model."): v.float() for k, v in state.items()}


class SourceBankCallback(pl.Callback):
    """``epoch_mean`` source bank (see the module docstring).

    ``mode="final_pass"`` only marks the run: the bank is computed at export time from the
    exported weights (:func:`aioir.engine.source_bank.compute_final_pass`).
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

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        pl_module.collect_bank_features = self.collects

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if self.collects and isinstance(outputs, dict) and "bank_g" in outputs:
            self.accumulator.add_task_ordered(outputs["bank_g"])

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
