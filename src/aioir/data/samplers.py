"""Task-balanced batch sampling: every batch holds ``M`` samples of every task, in a fixed order.

UDAIR's cross-sample contrastive loss (``docs/methods/udair.md``, "Cross-sample contrastive
loss", "Training recipe") reshapes each batch to
``[T, M, …]``, so a batch must be ``[t0 × M, t1 × M, …]``. UDAIR pads every task's file list by
random duplication to the longest list and defines an epoch as ``ceil(longest / M)`` batches.

Under DDP the epoch's global batch sequence is dealt out round-robin: rank ``r`` gets global
batches ``r, r + R, r + 2R, …``. If the count is not a multiple of ``R`` the sequence is extended
with further (freshly shuffled) batches, so every rank gets the same number and none is shared.

Training items can be a pure function of ``(seed, epoch, index)``: :class:`EpochBatchSampler`
yields ``(epoch, index)`` keys and :class:`EpochIndexedDataset` selects the epoch of its dataset
before reading the item, so crops and degradations do not depend on workers or on resuming.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

import torch
from torch.utils.data import Dataset, Sampler

from aioir.degradations.base import seed_from_name
from aioir.errors import ConfigError

__all__ = ["EpochBatchSampler", "EpochIndexedDataset", "TaskBalancedBatchSampler"]


class SizedDataset(Protocol):
    """A map-style dataset with a length, of items read as mappings (every dataset here)."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int, /) -> Mapping[str, Any]: ...


def _dist_default(num_replicas: int | None, rank: int | None) -> tuple[int, int]:
    dist = torch.distributed
    active = dist.is_available() and dist.is_initialized()
    if num_replicas is None:
        num_replicas = dist.get_world_size() if active else 1
    if rank is None:
        rank = dist.get_rank() if active else 0
    if num_replicas < 1:
        raise ConfigError(f"num_replicas must be ≥ 1, got {num_replicas}")
    if not 0 <= rank < num_replicas:
        raise ConfigError(f"rank must lie in [0, {num_replicas}), got {rank}")
    return int(num_replicas), int(rank)


class TaskBalancedBatchSampler(Sampler[list[int]]):
    """Yield batches ``[t0 × M, t1 × M, …]`` of dataset indices, deterministic given (seed, epoch).

    Args:
        task_indices: ``{task_id: dataset indices}`` (e.g. ``SyntheticDegradationDataset.task_indices``).
        samples_per_task: ``M``, samples of each task per batch.
        task_order: order of the tasks inside a batch (default: sorted task ids).
        shuffle: shuffle each task's list every epoch (padding duplicates are random either way;
            without shuffling they are taken from the start of the list, in order).
        seed: base seed; the epoch's order comes from ``(seed, epoch)``.
        num_replicas, rank: DDP world size and rank (default: from ``torch.distributed`` if
            initialised, else 1 and 0).
        epoch_length: global batches per epoch (default ``ceil(longest list / M)``).

    Call :meth:`set_epoch` at the start of every epoch. :meth:`state_dict` records the position
    inside the epoch so a resumed run continues with exactly the batches it would have seen.
    """

    def __init__(
        self,
        task_indices: Mapping[int, Sequence[int]],
        samples_per_task: int,
        *,
        task_order: Sequence[int] | None = None,
        shuffle: bool = True,
        seed: int = 0,
        num_replicas: int | None = None,
        rank: int | None = None,
        epoch_length: int | None = None,
    ) -> None:
        if int(samples_per_task) < 1:
            raise ConfigError(f"samples_per_task must be ≥ 1, got {samples_per_task}")
        if not task_indices:
            raise ConfigError("task_indices: need at least one task")
        order = list(task_order) if task_order is not None else sorted(task_indices)
        if sorted(order) != sorted(task_indices):
            raise ConfigError(
                f"task_order {order} must list each task of task_indices exactly once ({sorted(task_indices)})"
            )
        self.task_order = order
        self.lists = {t: torch.as_tensor(list(task_indices[t]), dtype=torch.int64) for t in order}
        empty = [t for t in order if self.lists[t].numel() == 0]
        if empty:
            raise ConfigError(f"task_indices: task {empty[0]} has no samples")
        self.samples_per_task = int(samples_per_task)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.num_replicas, self.rank = _dist_default(num_replicas, rank)
        self.longest = max(int(v.numel()) for v in self.lists.values())
        if epoch_length is not None and int(epoch_length) < 1:
            raise ConfigError(f"epoch_length must be ≥ 1, got {epoch_length}")
        self.epoch_length = (
            math.ceil(self.longest / self.samples_per_task)
            if epoch_length is None
            else int(epoch_length)
        )
        self.epoch = 0
        self._position = 0

    @property
    def batch_size(self) -> int:
        """Samples per batch: ``len(tasks) × samples_per_task``."""
        return len(self.task_order) * self.samples_per_task

    def __len__(self) -> int:
        """Batches per epoch on this rank."""
        return math.ceil(self.epoch_length / self.num_replicas)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch; the position restarts at 0 unless the epoch is unchanged."""
        if int(epoch) != self.epoch:
            self.epoch = int(epoch)
            self._position = 0

    def state_dict(self, batches_done: int | None = None) -> dict[str, Any]:
        """``{"epoch", "position", "seed", "num_replicas"}``.

        ``position`` is the number of batches this rank has yielded in the current epoch. With a
        ``DataLoader`` that prefetches, pass ``batches_done`` (the batches actually consumed) to
        record that instead.
        """
        position = self._position if batches_done is None else int(batches_done)
        return {
            "epoch": self.epoch,
            "position": position,
            "seed": self.seed,
            "num_replicas": self.num_replicas,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`'s epoch and position; the next iteration resumes there."""
        if int(state.get("seed", self.seed)) != self.seed:
            raise ConfigError(
                f"sampler state has seed {state['seed']} but this sampler uses seed {self.seed}"
            )
        if int(state.get("num_replicas", self.num_replicas)) != self.num_replicas:
            raise ConfigError(
                f"sampler state was saved with {state['num_replicas']} replicas, now {self.num_replicas}"
            )
        position = int(state["position"])
        if not 0 <= position <= len(self):
            raise ConfigError(f"sampler state position {position} is outside 0..{len(self)}")
        self.epoch = int(state["epoch"])
        self._position = position

    def global_batches(self) -> list[list[int]]:
        """All global batches of the current epoch (padded to a multiple of ``num_replicas``)."""
        total = len(self) * self.num_replicas
        m = self.samples_per_task
        gen = torch.Generator().manual_seed(
            seed_from_name(f"task-balanced/{self.epoch}", self.seed)
        )
        streams = [self._stream(self.lists[t], total * m, gen) for t in self.task_order]
        chunks = torch.stack([s.view(total, m) for s in streams], dim=1)  # total×T×M
        return chunks.reshape(total, -1).tolist()

    def __iter__(self) -> Iterator[list[int]]:
        mine = self.global_batches()[self.rank :: self.num_replicas]
        while self._position < len(mine):
            batch = mine[self._position]
            self._position += 1
            yield batch
        self._position = 0

    def _stream(self, indices: torch.Tensor, count: int, gen: torch.Generator) -> torch.Tensor:
        """``count`` indices: rounds of the list padded to the longest list, each round shuffled."""
        n = int(indices.numel())
        rounds, have = [], 0
        while have < count:
            if self.shuffle:
                pad = torch.cat(
                    [torch.randperm(n, generator=gen) for _ in range(math.ceil(self.longest / n))]
                )[: self.longest - n]
                padded = torch.cat([indices, indices[pad]])
                padded = padded[torch.randperm(self.longest, generator=gen)]
            else:
                padded = indices.repeat(math.ceil(self.longest / n))[: self.longest]
            rounds.append(padded)
            have += self.longest
        return torch.cat(rounds)[:count]


class EpochIndexedDataset(Dataset):
    """Takes ``(epoch, index)`` keys: selects the epoch, then returns ``base[index]`` + index."""

    def __init__(self, base: SizedDataset) -> None:
        self.base = base

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, Any]:
        epoch, index = key
        if hasattr(self.base, "set_epoch"):
            self.base.set_epoch(epoch)
        item = dict(self.base[index])
        item["index"] = index
        return item


class EpochBatchSampler:
    """Wraps a :class:`TaskBalancedBatchSampler`: yields ``[(epoch, index), …]`` batches."""

    def __init__(self, sampler: TaskBalancedBatchSampler) -> None:
        self.sampler = sampler

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for batch in self.sampler:
            yield [(self.sampler.epoch, i) for i in batch]

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def state_dict(self, batches_done: int | None = None) -> dict[str, Any]:
        return self.sampler.state_dict(batches_done)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.sampler.load_state_dict(state)
