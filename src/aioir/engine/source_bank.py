"""UDAIR's source bank: per-task mean degradation embeddings at the three fusion levels.

``bank[level]`` is a ``T×C×h×w`` tensor (``level`` ∈ ``g4``, ``g3``, ``g2``; ``T`` tasks in
``task_names`` order) — the reference statistics of CORAL test-time adaptation (methods.md
§2.8, §2.10). Two ways to compute it (methods.md §2.15 item 14):

* ``epoch_mean`` (the authors): at every training step the detached ``g``'s of the
  task-ordered batch are reshaped to ``[T, M, C, h, w]``, averaged over ``M`` and summed; at
  each validation the sum is divided by the step count, kept if validation PSNR is a new best,
  and reset. The bank then mixes a changing model, with dropout on.
* ``final_pass`` (our default): one pass in eval mode over fixed training crops with the final
  (exported) weights — see :func:`compute_final_pass`.

The file format lives with the model (:mod:`aioir.models.source_bank`), so restoring and
test-time adaptation read the bank without importing the training engine.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from aioir.errors import CheckpointError, ConfigError
from aioir.models.source_bank import BANK_FILE, LEVELS, load_source_bank, save_source_bank

__all__ = [
    "BANK_FILE",
    "LEVELS",
    "SourceBankAccumulator",
    "compute_final_pass",
    "load_source_bank",
    "save_source_bank",
]


class SourceBankAccumulator:
    """Running per-task sums of ``g4/g3/g2`` (``epoch_mean``) or per-item sums (final pass).

    :meth:`add_task_ordered` takes a task-ordered batch (``T·M`` items, UDAIR's convention);
    :meth:`add_items` takes any batch with its task ids. :meth:`mean` gives the bank.
    """

    def __init__(self, task_names: Sequence[str]) -> None:
        if not task_names:
            raise ConfigError("source bank: need at least one task")
        self.task_names = list(task_names)
        self.sums: dict[str, Tensor] = {}
        self.counts = torch.zeros(len(self.task_names), dtype=torch.float64)

    def reset(self) -> None:
        """Forget everything accumulated."""
        self.sums = {}
        self.counts = torch.zeros(len(self.task_names), dtype=torch.float64)

    @property
    def empty(self) -> bool:
        return not self.sums or bool((self.counts == 0).all())

    def _add(self, level: str, value: Tensor) -> None:
        value = value.detach().double()
        if level in self.sums:
            self.sums[level] = self.sums[level].to(value.device) + value
        else:
            self.sums[level] = value

    @torch.no_grad()
    def add_task_ordered(self, g: Mapping[str, Tensor] | Sequence[Tensor]) -> None:
        """One step of a task-ordered batch: mean over ``M`` per task, added to the sums."""
        maps = _levels(g)
        t = len(self.task_names)
        for level, x in maps.items():
            if x.shape[0] % t:
                raise ConfigError(
                    f"source bank: batch of {x.shape[0]} is not task-ordered over {t} tasks"
                )
            self._add(level, x.reshape(t, x.shape[0] // t, *x.shape[1:]).mean(1))
        self.counts += 1

    @torch.no_grad()
    def add_items(self, g: Mapping[str, Tensor] | Sequence[Tensor], task_ids: Tensor) -> None:
        """Items with arbitrary task ids: per-item embeddings summed into their task."""
        maps = _levels(g)
        t = len(self.task_names)
        ids = task_ids.to(torch.int64).cpu()
        for level, x in maps.items():
            x = x.detach().double()
            acc = torch.zeros(t, *x.shape[1:], dtype=torch.float64, device=x.device)
            acc.index_add_(0, ids.to(x.device), x)
            self._add(level, acc)
        self.counts += torch.bincount(ids, minlength=t).double()

    def mean(self) -> dict[str, Tensor]:
        """``{level: T×C×h×w}`` float32 means (ConfigError if a task has no data)."""
        if self.empty:
            raise ConfigError("source bank: nothing accumulated")
        if bool((self.counts == 0).any()):
            missing = [n for n, c in zip(self.task_names, self.counts.tolist()) if c == 0]
            raise ConfigError(f"source bank: no data for task(s) {', '.join(missing)}")
        out = {}
        for level, s in self.sums.items():
            shape = (-1,) + (1,) * (s.ndim - 1)
            out[level] = (s / self.counts.to(s.device).view(shape)).float().cpu()
        return out

    def state_dict(self) -> dict[str, Any]:
        return {
            "task_names": list(self.task_names),
            "sums": {k: v.cpu() for k, v in self.sums.items()},
            "counts": self.counts.clone(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if list(state["task_names"]) != self.task_names:
            raise CheckpointError(
                f"source bank tasks {list(state['task_names'])} differ from {self.task_names}"
            )
        self.sums = {k: v.clone() for k, v in state["sums"].items()}
        self.counts = state["counts"].clone().double()


def _levels(g: Mapping[str, Tensor] | Sequence[Tensor]) -> dict[str, Tensor]:
    if isinstance(g, Mapping):
        return {k: g[k] for k in LEVELS}
    if len(g) != len(LEVELS):
        raise ValueError(f"expected (g4, g3, g2), got {len(g)} tensors")
    return dict(zip(LEVELS, g, strict=True))


@torch.no_grad()
def compute_final_pass(
    model: nn.Module, batches: Iterable[Mapping[str, Any]], task_names: Sequence[str]
) -> tuple[dict[str, Tensor], Tensor]:
    """The bank from one eval-mode pass: per-task mean of ``g4/g3/g2`` over the batches.

    ``batches`` yield ``{"input": B×3×H×W, "task_id": B}`` (fixed crops of the training set).
    Returns ``(bank, counts)``. The model's train/eval mode is restored afterwards.
    """
    forward_features = getattr(model, "forward_features", None)
    if forward_features is None:
        raise ConfigError(f"{type(model).__name__} has no forward_features: no source bank")
    acc = SourceBankAccumulator(task_names)
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        for batch in batches:
            out = forward_features(batch["input"].to(device), decode=False)
            acc.add_items((out.g4, out.g3, out.g2), torch.as_tensor(batch["task_id"]))
    finally:
        model.train(was_training)
    return acc.mean(), acc.counts.clone()
