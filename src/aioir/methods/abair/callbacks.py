"""The Lightning callback of ABAIR's adapter phase: each sample uses its own task's adapter."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F

from aioir.models.wrappers import unwrap

__all__ = ["OracleAdapterWeights"]


class OracleAdapterWeights(pl.Callback):
    """Before each training and validation batch, set the network's per-sample adapter weights
    to the one-hot of each sample's task (``index[task_id]`` = its adapter); cleared after."""

    def __init__(self, index: Sequence[int], num_adapters: int) -> None:
        self.index = torch.tensor(list(index), dtype=torch.long)
        self.num_adapters = int(num_adapters)

    def _set(self, pl_module: pl.LightningModule, batch: Mapping[str, Any]) -> None:
        ids = torch.as_tensor(batch["task_id"]).long().cpu()
        weights = F.one_hot(self.index[ids], self.num_adapters).float()
        unwrap(pl_module.model).task_weights = weights.to(pl_module.device)

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
