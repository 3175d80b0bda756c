"""The Lightning callback of ABAIR's adapter phase: each sample uses its own task's adapter."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import lightning.pytorch as pl
import torch

from aioir.models.wrappers import unwrap

__all__ = ["OracleAdapterWeights"]


class OracleAdapterWeights(pl.Callback):
    """Before each training and validation batch, set the network's per-sample adapter weights
    to row ``task_id`` of ``rows`` (data tasks × adapters: the one-hot of each sample's task, or
    the multi-hot of a composite task); cleared after."""

    def __init__(self, rows: torch.Tensor) -> None:
        self.rows = rows.detach().float().cpu()

    def _set(self, pl_module: pl.LightningModule, batch: Mapping[str, Any]) -> None:
        ids = torch.as_tensor(batch["task_id"]).long().cpu()
        unwrap(pl_module.model).task_weights = self.rows[ids].to(pl_module.device)

    def _clear(self, pl_module: pl.LightningModule) -> None:
        unwrap(pl_module.model).task_weights = None

    def on_train_batch_start(
        self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int
    ) -> None:
        self._set(pl_module, batch)

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self._clear(pl_module)

    def on_validation_batch_start(
        self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        self._set(pl_module, batch)

    def on_validation_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:  # fmt: skip
        self._clear(pl_module)
