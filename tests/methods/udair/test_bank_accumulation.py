"""Format-2 source bank statistics: exact accumulation, merging, the final pass and rebuild."""

from __future__ import annotations

import pytest
import torch

from aioir.errors import ConfigError
from aioir.losses.coral import covariance
from aioir.methods.udair.bank_accumulation import (
    RowStatisticsAccumulator,
    compute_final_pass,
    compute_source_bank,
)

TASKS = ["a", "b", "c"]
SHAPES = {"g4": (6, 4, 4), "g3": (5, 8, 8), "g2": (3, 16, 16)}


def _maps(n: int, seed: int, scale: float = 1.0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        lv: 0.3 + scale * torch.randn(n, *shape, generator=g) * torch.rand(shape[0], 1, 1, generator=g)
        for lv, shape in SHAPES.items()
    }  # fmt: skip


def _direct(maps: dict[str, torch.Tensor], ids: torch.Tensor, hw: dict[str, tuple[int, int]]):
    """Stack the pooled rows of every item of a task, then mean / covariance directly."""
    out = {"mean": {}, "cov": {}, "within": {}}
    for lv, x in maps.items():
        pooled = torch.nn.functional.adaptive_avg_pool2d(x.double(), hw[lv])
        rows = pooled.flatten(2).transpose(1, 2)  # B×n×C
        means, covs, within = [], [], []
        for k in range(len(TASKS)):
            mine = rows[ids == k]
            stacked = mine.reshape(-1, mine.shape[-1])
            means.append(stacked.mean(0))
            covs.append(covariance(stacked))
            within.append(torch.stack([covariance(r) for r in mine]).mean(0))
        out["mean"][lv] = torch.stack(means)
        out["cov"][lv] = torch.stack(covs)
        out["within"][lv] = torch.stack(within)
    return out


def test_accumulated_statistics_equal_the_direct_computation():
    maps = _maps(12, seed=0)
    ids = torch.tensor([0, 1, 2, 2, 1, 0, 0, 1, 2, 0, 1, 2])
    acc = RowStatisticsAccumulator(TASKS)
    for start in range(0, 12, 5):  # uneven batches
        acc.add_items({k: v[start : start + 5] for k, v in maps.items()}, ids[start : start + 5])
    got = acc.result()
    want = _direct(maps, ids, {lv: s[1:] for lv, s in SHAPES.items()})
    for kind in ("mean", "cov", "within"):
        for lv in SHAPES:
            assert got[kind][lv].dtype == torch.float32
            torch.testing.assert_close(got[kind][lv].double(), want[kind][lv], rtol=1e-5, atol=1e-7)
    # the unbiased convention of aioir.losses.coral: a task's cov is covariance(all its rows)
    assert acc.counts()["images"] == [4, 4, 4]
    assert acc.counts()["rows"]["g3"] == [4 * 64] * 3


def test_pooling_to_the_bank_size_and_merging_are_exact():
    maps = _maps(6, seed=1)
    ids = torch.tensor([0, 1, 2, 0, 1, 2])
    sizes = {"g4": (2, 2), "g3": (4, 4), "g2": (8, 8)}
    whole = RowStatisticsAccumulator(TASKS, sizes)
    whole.add_items(maps, ids)
    first, second = RowStatisticsAccumulator(TASKS, sizes), RowStatisticsAccumulator(TASKS, sizes)
    first.add_items({k: v[:3] for k, v in maps.items()}, ids[:3])
    second.add_items({k: v[3:] for k, v in maps.items()}, ids[3:])
    first.merge(second)
    restored = RowStatisticsAccumulator(TASKS)
    restored.load_state_dict(first.state_dict())
    want = _direct(maps, ids, sizes)
    for acc in (whole, restored):
        got = acc.result()
        for kind in ("mean", "cov", "within"):
            for lv in SHAPES:
                torch.testing.assert_close(
                    got[kind][lv].double(), want[kind][lv], rtol=1e-5, atol=1e-7
                )
    with pytest.raises(ConfigError, match="differ"):
        first.merge(RowStatisticsAccumulator(["x", "y", "z"]))


def test_statistics_errors_name_the_empty_task():
    acc = RowStatisticsAccumulator(TASKS)
    with pytest.raises(ConfigError, match="nothing"):
        acc.result()
    acc.add_items(_maps(2, seed=2), torch.tensor([0, 2]))
    with pytest.raises(ConfigError, match="b"):
        acc.result()
    with pytest.raises(ConfigError, match="range"):
        acc.add_items(_maps(1, seed=3), torch.tensor([3]))


class _FakeDAM(torch.nn.Module):
    """forward_features(x) → maps that are simple functions of x (a stand-in UDAIR)."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))

    def forward_features(self, x, decode=False):
        class Out:
            pass

        o = Out()
        o.g4 = torch.nn.functional.avg_pool2d(x, 8).repeat(1, 2, 1, 1) * self.w
        o.g3 = torch.nn.functional.avg_pool2d(x, 4) * self.w
        o.g2 = torch.nn.functional.avg_pool2d(x, 2)[:, :2] * self.w
        return o


def test_compute_source_bank_matches_the_final_pass_and_the_direct_statistics():
    g = torch.Generator().manual_seed(4)
    batches = [
        {"input": torch.rand(4, 3, 32, 32, generator=g), "task_id": torch.tensor([0, 1, 2, 0])},
        {"input": torch.rand(2, 3, 32, 32, generator=g), "task_id": torch.tensor([1, 2])},
    ]
    model = _FakeDAM().train()
    bank = compute_source_bank(model, batches, TASKS, metadata={"patch_size": 32})
    assert model.training  # mode restored
    maps, counts = compute_final_pass(model, batches, TASKS)
    for lv in ("g4", "g3", "g2"):
        torch.testing.assert_close(bank.levels[lv], maps[lv])
    assert bank.metadata["count"] == [int(c) for c in counts] == [2, 2, 2]
    assert bank.metadata["patch_size"] == 32 and bank.has_statistics
    x = torch.cat([b["input"] for b in batches])
    ids = torch.cat([b["task_id"] for b in batches])
    with torch.no_grad():
        o = model.forward_features(x)
    want = _direct({"g4": o.g4, "g3": o.g3, "g2": o.g2}, ids,
                   {"g4": (4, 4), "g3": (8, 8), "g2": (16, 16)})  # fmt: skip
    for lv in ("g4", "g3", "g2"):
        torch.testing.assert_close(bank.covs[lv].double(), want["cov"][lv], rtol=1e-5, atol=1e-8)
        torch.testing.assert_close(
            bank.within[lv].double(), want["within"][lv], rtol=1e-5, atol=1e-8
        )
        # the stored mean equals the spatial mean of the mean map (same crops)
        torch.testing.assert_close(bank.means[lv], bank.levels[lv].mean(dim=(2, 3)))
