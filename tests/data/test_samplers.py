"""TaskBalancedBatchSampler: batch order, coverage, DDP shares, exact resume; (epoch, index) keys."""

from __future__ import annotations

import math

import pytest

from aioir.data.samplers import EpochBatchSampler, EpochIndexedDataset, TaskBalancedBatchSampler
from aioir.errors import ConfigError

# task id -> indices; unequal lengths force padding (longest = 7)
TASKS = {0: list(range(0, 5)), 1: list(range(100, 107)), 2: list(range(200, 203))}
TASK_OF = {i: t for t, idx in TASKS.items() for i in idx}


def test_batches_are_ordered_by_task_and_cover_every_sample() -> None:
    m = 2
    s = TaskBalancedBatchSampler(TASKS, m, task_order=[2, 0, 1], seed=1, num_replicas=1, rank=0)
    batches = list(s)
    assert len(batches) == len(s) == math.ceil(7 / m)
    for batch in batches:
        assert len(batch) == s.batch_size == 6
        assert [TASK_OF[i] for i in batch] == [2, 2, 0, 0, 1, 1]
    seen = {i for b in batches for i in b}
    assert seen == set(TASK_OF)  # every task's samples appear in the epoch
    counts = {t: sum(TASK_OF[i] == t for b in batches for i in b) for t in TASKS}
    assert set(counts.values()) == {len(batches) * m}


def test_epochs_differ_and_are_deterministic() -> None:
    a = TaskBalancedBatchSampler(TASKS, 2, seed=0, num_replicas=1, rank=0)
    b = TaskBalancedBatchSampler(TASKS, 2, seed=0, num_replicas=1, rank=0)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first
    plain = TaskBalancedBatchSampler(TASKS, 2, shuffle=False, num_replicas=1, rank=0)
    assert next(iter(plain)) == [0, 1, 100, 101, 200, 201]
    assert len(TaskBalancedBatchSampler(TASKS, 2, epoch_length=9, num_replicas=1, rank=0)) == 9


def test_ranks_get_disjoint_equal_shares_of_the_epoch() -> None:
    kw = {"seed": 5, "epoch_length": 5}
    ranks = [TaskBalancedBatchSampler(TASKS, 1, num_replicas=2, rank=r, **kw) for r in (0, 1)]
    for r in ranks:
        r.set_epoch(3)
    shares = [list(r) for r in ranks]
    assert len(shares[0]) == len(shares[1]) == len(ranks[0]) == 3  # 5 batches → 3 each
    single = TaskBalancedBatchSampler(TASKS, 1, num_replicas=1, rank=0, seed=5, epoch_length=6)
    single.set_epoch(3)
    everything = list(single)
    interleaved = [b for pair in zip(*shares) for b in pair]
    # together they are exactly the epoch's batch sequence, each global batch on one rank only
    assert interleaved == everything


def test_resume_from_state_dict_continues_identically() -> None:
    s = TaskBalancedBatchSampler(TASKS, 2, seed=9, num_replicas=2, rank=1, epoch_length=8)
    s.set_epoch(4)
    full = list(s)
    it = iter(s)
    done = [next(it), next(it)]
    state = s.state_dict()
    assert state["epoch"] == 4 and state["position"] == 2
    fresh = TaskBalancedBatchSampler(TASKS, 2, seed=9, num_replicas=2, rank=1, epoch_length=8)
    fresh.load_state_dict(state)
    fresh.set_epoch(4)  # a trainer calling set_epoch for the same epoch keeps the position
    assert done + list(fresh) == full
    assert list(fresh) == full  # the next pass starts the epoch from the beginning
    assert s.state_dict(batches_done=1)["position"] == 1
    with pytest.raises(ConfigError, match="seed"):
        TaskBalancedBatchSampler(TASKS, 2, seed=1, num_replicas=2, rank=1).load_state_dict(state)


def test_invalid_arguments() -> None:
    with pytest.raises(ConfigError, match="task_order"):
        TaskBalancedBatchSampler(TASKS, 2, task_order=[0, 1], num_replicas=1, rank=0)
    with pytest.raises(ConfigError, match="no samples"):
        TaskBalancedBatchSampler({0: [1], 1: []}, 2, num_replicas=1, rank=0)
    with pytest.raises(ConfigError, match="rank"):
        TaskBalancedBatchSampler(TASKS, 2, num_replicas=2, rank=2)


class _EpochRecorder:
    """A dataset whose item says which epoch it was read in."""

    def __init__(self) -> None:
        self.epoch = 0

    def __len__(self) -> int:
        return 300

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __getitem__(self, index: int) -> dict[str, int]:
        return {"epoch": self.epoch, "value": index * 10}


def test_epoch_keys_select_the_epoch_before_reading() -> None:
    sampler = EpochBatchSampler(TaskBalancedBatchSampler(TASKS, 1, seed=2, num_replicas=1, rank=0))
    sampler.set_epoch(3)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 7
    assert all(epoch == 3 for batch in batches for epoch, _ in batch)
    assert [[i for _, i in batch] for batch in batches] == list(sampler.sampler)
    ds = EpochIndexedDataset(_EpochRecorder())
    assert len(ds) == 300
    assert ds[(5, 12)] == {"epoch": 5, "value": 120, "index": 12}
    assert sampler.state_dict(batches_done=2)["position"] == 2
