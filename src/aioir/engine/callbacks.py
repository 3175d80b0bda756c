"""Lightning callbacks shared by every model: weight EMA and the latest-state checkpoint.

* :class:`EMACallback` keeps an exponential moving average of the trainable parameters
  (buffers are used as they are, as BasicSR does). Validation runs on the EMA weights, so the
  best checkpoint is chosen by them; the checkpoint stores them under their own key
  ``"ema_state_dict"`` next to the raw weights, and the export uses them.
* :class:`LatestCheckpoint` writes the latest training state (``last.ckpt``) and keeps its
  validation record whole when it is written on a step cadence.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import Tensor

from aioir.io import write_bytes_atomically
from aioir.models.checkpoints import EMA_KEY

__all__ = ["EMA_KEY", "EMACallback", "LatestCheckpoint"]


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


class LatestCheckpoint(ModelCheckpoint):
    """The latest training state, every ``every_n_train_steps`` steps or at every validation.

    A step-cadence save runs when the step's batch ends, before a validation due at that step,
    so the file would lack that validation and a run resumed from it would too. When a
    validation ends at the step just saved, the file's ``"val_history"`` (the only entry the
    validation changes) is rewritten to include it, atomically.
    """

    def __init__(self, dirpath: Path, filename: str, every_n_train_steps: int | None) -> None:
        super().__init__(
            dirpath=str(dirpath), filename=filename, monitor=None, save_top_k=1,
            every_n_train_steps=every_n_train_steps, auto_insert_metric_name=False,
            enable_version_counter=False,
        )  # fmt: skip
        self.step_cadence = every_n_train_steps

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        step = trainer.global_step
        if not self.step_cadence or step % self.step_cadence or trainer.sanity_checking:
            return
        path = Path(self.best_model_path)
        if not trainer.is_global_zero or not path.is_file():
            return
        state = torch.load(path, map_location="cpu", weights_only=False)
        history = list(getattr(pl_module, "val_history", []))
        if state.get("global_step") != step or state.get("val_history") == history:
            return
        state["val_history"] = history
        buffer = io.BytesIO()
        torch.save(state, buffer)
        write_bytes_atomically(path, buffer.getvalue(), overwrite=True)
