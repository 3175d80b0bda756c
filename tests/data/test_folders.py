"""Paired/unpaired folder datasets and the pairing rules."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from aioir.data.folders import (
    PAIRING_RULES,
    PairedFolderDataset,
    UnpairedFolderDataset,
    format_names,
    get_pairing_rule,
    match_pairs,
)
from aioir.errors import ConfigError, DatasetLayoutError


def png(path: Path, value: int, size: tuple[int, int] = (8, 8)) -> Path:
    """Write a constant-colour RGB image (format from the suffix) and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), value, np.uint8)).save(path)
    return path


def test_rule_keys() -> None:
    rain = PAIRING_RULES["rain100l"]
    assert rain.input_key("rain-12.png") == "norain-12.png"
    assert rain.input_key("norain-12.png") is None
    assert rain.input_key("12.png") is None
    ots = PAIRING_RULES["ots"]
    assert ots.input_key("0001_0.8_0.2.jpg") == "0001"
    assert ots.target_key("0001.png") == "0001"
    assert ots.input_key("0001.jpg") is None  # a clean image in the hazy folder
    assert PAIRING_RULES["stem"].input_key("a.jpg") == PAIRING_RULES["stem"].target_key("a.png")
    assert not ots.one_to_one and rain.one_to_one


def test_unknown_rule() -> None:
    with pytest.raises(ConfigError, match=r"unknown pairing rule 'nope'.*name, stem"):
        get_pairing_rule("nope")


def test_format_names() -> None:
    assert format_names(["a", "b"]) == "a, b"
    assert format_names(["a", "b", "c", "d"]) == "a, b, c, …"


def test_paired_same_name(tmp_path: Path) -> None:
    for i, name in enumerate(["b.png", "a.png"]):
        png(tmp_path / "input" / name, 10 + i)
        png(tmp_path / "target" / name, 200 + i)
    ds = PairedFolderDataset(tmp_path, task="rain")
    assert len(ds) == 2
    assert [(i.name, t.name) for i, t in ds.pairs] == [("a.png", "a.png"), ("b.png", "b.png")]
    item = ds[0]
    assert item["name"] == "a.png" and item["task"] == "rain"
    x, y = item["input"], item["target"]
    assert x.shape == y.shape == (3, 8, 8) and x.dtype == torch.float32
    assert torch.allclose(x, torch.full_like(x, 11 / 255))
    assert torch.allclose(y, torch.full_like(y, 201 / 255))
    batch = next(iter(DataLoader(ds, batch_size=2)))
    assert batch["input"].shape == (2, 3, 8, 8) and batch["name"] == ["a.png", "b.png"]


def test_paired_without_task_collates(tmp_path: Path) -> None:
    png(tmp_path / "input" / "a.png", 1)
    png(tmp_path / "target" / "a.png", 2)
    batch = next(iter(DataLoader(PairedFolderDataset(tmp_path), batch_size=1)))
    assert batch["task"] == [""]


def test_paired_stem_rule_custom_dirs(tmp_path: Path) -> None:
    png(tmp_path / "images" / "x.jpg", 50)
    png(tmp_path / "labels" / "x.png", 60)
    ds = PairedFolderDataset(tmp_path, "images", "labels", pairing="stem")
    assert [(i.name, t.name) for i, t in ds.pairs] == [("x.jpg", "x.png")]
    with pytest.raises(
        DatasetLayoutError, match="1 of 1 images in images/ have no partner in labels/"
    ):
        PairedFolderDataset(tmp_path, "images", "labels")  # same-name rule: x.jpg has no x.jpg


def test_paired_rain100l_rule(tmp_path: Path) -> None:
    for n in (1, 12):
        png(tmp_path / "rainy" / f"rain-{n}.png", n)
        png(tmp_path / "gt" / f"norain-{n}.png", 100 + n)
    ds = PairedFolderDataset(tmp_path, "rainy", "gt", pairing="rain100l")
    assert [(i.name, t.name) for i, t in ds.pairs] == [
        ("rain-1.png", "norain-1.png"),
        ("rain-12.png", "norain-12.png"),
    ]
    assert torch.allclose(ds[1]["target"], torch.full((3, 8, 8), 112 / 255))


def test_paired_ots_rule_recursive_many_to_one(tmp_path: Path) -> None:
    png(tmp_path / "synthetic" / "part1" / "0001_0.8_0.2.png", 1)
    png(tmp_path / "synthetic" / "part2" / "0001_1_0.04.png", 2)
    png(tmp_path / "synthetic" / "part2" / "0002_0.9_0.1.png", 3)
    png(tmp_path / "original" / "0001.jpg", 4)
    png(tmp_path / "original" / "0002.png", 5)
    png(tmp_path / "original" / "0003.png", 6)  # unused clean image: fine for a many-to-one rule
    ds = PairedFolderDataset(tmp_path, "synthetic", "original", pairing="ots", recursive=True)
    assert [(ds[i]["name"], t.name) for i, (_, t) in enumerate(ds.pairs)] == [
        ("part1/0001_0.8_0.2.png", "0001.jpg"),
        ("part2/0001_1_0.04.png", "0001.jpg"),
        ("part2/0002_0.9_0.1.png", "0002.png"),
    ]
    png(tmp_path / "original" / "0002.jpg", 7)  # now 0002 is ambiguous
    with pytest.raises(DatasetLayoutError, match=r"2 images share one pairing key.*0002\.jpg"):
        PairedFolderDataset(tmp_path, "synthetic", "original", pairing="ots", recursive=True)


def test_paired_mismatch_messages(tmp_path: Path) -> None:
    for name in ("a.png", "b.png", "c.png", "d.png", "e.png"):
        png(tmp_path / "input" / name, 1)
    png(tmp_path / "target" / "a.png", 2)
    with pytest.raises(DatasetLayoutError) as info:
        PairedFolderDataset(tmp_path)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg == (
        f"{tmp_path}: 4 of 5 images in input/ have no partner in target/ under pairing rule "
        "'name' "
        "(b.png, c.png, d.png, …)"
    )
    for name in ("b.png", "c.png", "d.png", "e.png", "z.png"):
        png(tmp_path / "target" / name, 2)
    with pytest.raises(
        DatasetLayoutError, match=r"1 of 6 images in target/ have no partner in input/ .*\(z\.png\)"
    ):
        PairedFolderDataset(tmp_path)


def test_paired_missing_and_empty(tmp_path: Path) -> None:
    with pytest.raises(DatasetLayoutError, match=r"input: missing folder \(inputs\)"):
        PairedFolderDataset(tmp_path)
    (tmp_path / "input").mkdir()
    (tmp_path / "target").mkdir()
    (tmp_path / "input" / "notes.txt").write_text("not an image")
    with pytest.raises(DatasetLayoutError, match=r"input: no images$"):
        PairedFolderDataset(tmp_path)


def test_paired_transform_and_size_mismatch(tmp_path: Path) -> None:
    png(tmp_path / "input" / "a.png", 1)
    png(tmp_path / "target" / "a.png", 2)
    png(tmp_path / "input" / "b.png", 1)
    png(tmp_path / "target" / "b.png", 2, size=(8, 6))

    def crop(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x[:, :4, :4], y[:, :4, :4]

    ds = PairedFolderDataset(tmp_path, transform=crop)
    assert ds[0]["input"].shape == ds[0]["target"].shape == (3, 4, 4)
    with pytest.raises(DatasetLayoutError, match=r"b\.png: size 8x8 differs from its target"):
        ds[1]


def test_match_pairs_reports_everything(tmp_path: Path) -> None:
    png(tmp_path / "rainy" / "rain-1.png", 1)
    png(tmp_path / "rainy" / "rain-2.png", 1)
    png(tmp_path / "gt" / "norain-1.png", 1)
    png(tmp_path / "gt" / "norain-3.png", 1)
    m = match_pairs(tmp_path / "rainy", tmp_path / "gt", "rain100l")
    assert not m.ok
    assert len(m.pairs) == 1
    assert m.unmatched_inputs == ["rain-2.png"] and m.unmatched_targets == ["norain-3.png"]


def test_unpaired(tmp_path: Path) -> None:
    png(tmp_path / "b.png", 30)
    png(tmp_path / "a.png", 20)
    png(tmp_path / "sub" / "c.png", 40)
    ds = UnpairedFolderDataset(tmp_path)
    assert len(ds) == 2 and set(ds[0]) == {"input", "name"}
    assert ds[0]["name"] == "a.png" and ds[0]["input"].shape == (3, 8, 8)
    assert torch.allclose(ds[0]["input"], torch.full((3, 8, 8), 20 / 255))
    deep = UnpairedFolderDataset(tmp_path, recursive=True, transform=lambda x: x * 0)
    assert [deep[i]["name"] for i in range(len(deep))] == ["a.png", "b.png", "sub/c.png"]
    assert deep[2]["input"].abs().sum() == 0


def test_unpaired_empty_or_missing(tmp_path: Path) -> None:
    with pytest.raises(DatasetLayoutError, match=r"^.*empty: no images$"):
        (tmp_path / "empty").mkdir()
        UnpairedFolderDataset(tmp_path / "empty")
    with pytest.raises(DatasetLayoutError, match="nowhere: missing folder"):
        UnpairedFolderDataset(tmp_path / "nowhere")
