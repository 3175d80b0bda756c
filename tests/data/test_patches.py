"""Task-labelled patches of paired folders, task concatenation and the hashed hold-out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from aioir.data.folders import PairedFolderDataset
from aioir.data.patches import PairedPatchDataset, TaskConcat, holdout_split
from aioir.errors import ConfigError


@pytest.fixture
def pairs(tmp_path: Path) -> PairedFolderDataset:
    """Three 20×24 pairs whose input and target are the same random image."""
    rng = np.random.default_rng(0)
    for sub in ("input", "target"):
        (tmp_path / sub).mkdir()
    for i in range(3):
        img = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
        for sub in ("input", "target"):
            Image.fromarray(img).save(tmp_path / sub / f"{i}.png")
    return PairedFolderDataset(tmp_path, task="rain")


def test_holdout_split_depends_on_names_not_order() -> None:
    names = [f"img{i}.png" for i in range(10)]
    train, val = holdout_split(names, 0.2, seed=1)
    assert len(val) == 2 and sorted(train + val) == list(range(10))
    reversed_names = names[::-1]
    _, val_r = holdout_split(reversed_names, 0.2, seed=1)
    assert {reversed_names[i] for i in val_r} == {names[i] for i in val}
    assert holdout_split(names, 0.2, seed=2) != (train, val)
    assert holdout_split(["only.png"], 0.5, seed=0) == ([0], [])


def test_random_patches_follow_seed_and_epoch(pairs: PairedFolderDataset) -> None:
    ds = PairedPatchDataset(pairs, [0, 1, 2], task_id=4, task="rain", size=8, seed=3)
    item = ds[1]
    assert item["input"].shape == (3, 8, 8) and item["task_id"] == 4 and item["task"] == "rain"
    torch.testing.assert_close(item["input"], item["target"], atol=0, rtol=0)  # same crop
    torch.testing.assert_close(ds[1]["input"], item["input"], atol=0, rtol=0)
    ds.set_epoch(1)
    assert not torch.equal(ds[1]["input"], item["input"])
    fixed = PairedPatchDataset(pairs, [0, 1, 2], 0, "rain", 8, mode="fixed")
    first = fixed[0]["input"]
    fixed.set_epoch(5)
    torch.testing.assert_close(fixed[0]["input"], first, atol=0, rtol=0)


def test_modes_sizes_and_repeats(pairs: PairedFolderDataset) -> None:
    whole = pairs[0]["input"]
    centre = PairedPatchDataset(pairs, [0], 0, "rain", 8, mode="center_crop")[0]["input"]
    torch.testing.assert_close(centre, whole[:, 6:14, 8:16], atol=0, rtol=0)
    resized = PairedPatchDataset(pairs, [0], 0, "rain", 10, mode="resize")[0]
    assert resized["input"].shape == resized["target"].shape == (3, 10, 10)
    full = PairedPatchDataset(pairs, [0], 0, "rain", None, mode="full")[0]["input"]
    torch.testing.assert_close(full, whole, atol=0, rtol=0)
    assert len(PairedPatchDataset(pairs, [0, 2], 0, "rain", 8, repeats=3)) == 6
    with pytest.raises(ConfigError, match="needs a patch size"):
        PairedPatchDataset(pairs, [0], 0, "rain", None)


def test_task_concat_relabels_and_indexes_tasks(pairs: PairedFolderDataset) -> None:
    a = PairedPatchDataset(pairs, [0, 1], 9, "rain", 8)
    b = PairedPatchDataset(pairs, [2], 9, "rain", 8)
    both = TaskConcat([(a, 0, "noise"), (b, 1, "haze"), (a, 0, "noise")])
    assert len(both) == 5
    assert both.task_indices == {0: [0, 1, 3, 4], 1: [2]}
    assert [(both[i]["task_id"], both[i]["task"]) for i in (1, 2)] == [(0, "noise"), (1, "haze")]
    both.set_epoch(2)
    assert a.epoch == b.epoch == 2
