"""Layout specs and ``check_layout`` / ``main_check`` on tiny fixture trees."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aioir.data.layouts import (
    LAYOUTS,
    Layout,
    check_layout,
    get_layout,
    main_check,
    paired_layout,
)
from aioir.errors import ConfigError
from aioir.tasks import TASKS

N = 2  # images per part in the fixture trees


def png(path: Path, value: int = 128) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(path)


def pair_names(rule: str, i: int) -> tuple[str, str]:
    """Input and target file names of the i-th pair under a pairing rule (test data only)."""
    return {
        "name": (f"{i:03d}.png", f"{i:03d}.png"),
        "stem": (f"{i:03d}.jpg", f"{i:03d}.png"),
        "rain100l": (f"rain-{i + 1}.png", f"norain-{i + 1}.png"),
        "ots": (f"{i:04d}_0.8_0.2.png", f"{i:04d}.png"),
    }[rule]


def build(root: Path, layout: Layout, n: int = N) -> Layout:
    """Write a correct tree for ``layout`` under ``root``; return the layout with counts = n."""
    for p in layout.parts:
        if p.optional:
            continue
        folder = root / p.path
        for i in range(n):
            if p.kind == "paired":
                a, b = pair_names(p.pairing, i)
                sub = "part1/" if p.recursive else ""  # RESIDE OTS part1..part4
                png(folder / p.input_dir / f"{sub}{a}", 10 + i)
                png(folder / p.target_dir / b, 200 + i)
            else:
                png(folder / f"{i:03d}.png", 10 + i)
    return layout.with_counts({p.path: n for p in layout.parts if p.count is not None})


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_correct_tree_passes(tmp_path: Path, name: str) -> None:
    layout = build(tmp_path, get_layout(name))
    report = check_layout(tmp_path, layout)
    assert report.ok, str(report)
    assert str(report).endswith("OK")
    assert report.notes  # what was found is reported


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_layout_is_consistent(name: str) -> None:
    layout = get_layout(name)
    assert layout.name == name
    for split in layout.splits:
        names = [p.name for p in layout.parts if p.split == split]
        assert len(names) == len(set(names)), f"duplicate part names in {split}"
    assert {p.task for p in layout.parts if p.task is not None} <= set(TASKS)
    assert len({p.path for p in layout.parts}) == len(layout.parts)


def test_published_counts() -> None:
    five = get_layout("promptir-5task")
    counts = {p.path: p.count for p in five.parts}
    assert counts["Train/Denoise"] == 5144 and counts["Train/Dehaze"] == 72135
    train = [counts[f"Train/{t}"] for t in ("Denoise", "Derain", "Dehaze", "Deblur", "Enhance")]
    assert train == [5144, 200, 72135, 2103, 485]
    test = [p.count for p in five.parts if p.split == "test" and not p.optional]
    assert test == [68, 100, 500, 1111, 15]
    three = get_layout("promptir-3task")
    assert {p.task for p in three.parts} == {"noise", "rain", "haze"}
    udair = get_layout("udair")
    assert sum(p.count or 0 for p in udair.parts if p.split == "train") == 6880
    assert sum(p.count or 0 for p in udair.parts if p.split == "test") == 1735
    assert udair.part("test/dehazing_urhi/images").kind == "unpaired"


def test_real_counts_fail_on_tiny_tree(tmp_path: Path) -> None:
    build(tmp_path, get_layout("promptir-3task"))
    report = check_layout(tmp_path, "promptir-3task")
    assert "Train/Derain/rainy: 2 images, expected 200" in report.problems
    assert "Train/Dehaze/synthetic: 2 images, expected 72,135" in report.problems
    assert "test/denoise/bsd68: 2 images, expected 68" in report.problems
    lenient = check_layout(tmp_path, "promptir-3task", strict_counts=False)
    assert lenient.ok
    assert "warning: Train/Derain/rainy: 2 images, expected 200" in lenient.notes


def test_missing_folders(tmp_path: Path) -> None:
    layout = build(tmp_path, get_layout("promptir-5task"))
    shutil.rmtree(tmp_path / "Train" / "Derain" / "gt")
    shutil.rmtree(tmp_path / "Train" / "Deblur")
    report = check_layout(tmp_path, layout)
    assert report.problems == ["Train/Derain/gt: missing folder", "Train/Deblur: missing folder"]
    assert "test/denoise/urban100: optional, not present" in report.notes
    # the 3-task layout does not need the deblur part
    three = build(tmp_path / "three", get_layout("promptir-3task"))
    assert check_layout(tmp_path / "three", three).ok


def test_unpaired_files(tmp_path: Path) -> None:
    layout = build(tmp_path, get_layout("promptir-5task"))
    for n in (5, 6, 7, 8):
        png(tmp_path / "Train" / "Derain" / "rainy" / f"rain-{n}.png")
    png(tmp_path / "test" / "deblur" / "gopro" / "target" / "extra.png")
    report = check_layout(tmp_path, layout.with_counts({"Train/Derain": 6}))
    assert report.problems == [
        "Train/Derain: 4 images in rainy/ have no partner in gt/ "
        "(rain-5.png, rain-6.png, rain-7.png, …)",
        "test/deblur/gopro: 1 image in target/ has no partner in input/ (extra.png)",
    ]


def test_ots_pairing_in_layout(tmp_path: Path) -> None:
    layout = build(tmp_path, get_layout("promptir-3task"))
    hazy = tmp_path / "Train" / "Dehaze" / "synthetic"
    png(hazy / "part2" / "0000_1_0.04.png")  # second hazy version of clean 0000: fine
    png(hazy / "part2" / "0009_1_0.04.png")  # no clean 0009
    png(tmp_path / "test" / "dehaze" / "target" / "0000.jpg")  # 0000.png and 0000.jpg: ambiguous
    report = check_layout(tmp_path, layout.with_counts({"Train/Dehaze": 4}))
    assert report.problems == [
        "Train/Dehaze: 1 image in synthetic/ has no partner in original/ (part2/0009_1_0.04.png)",
        "test/dehaze/target: 1 pairing key matches several images (0000.jpg, 0000.png)",
    ]


def test_wrong_count_and_empty_folder(tmp_path: Path) -> None:
    layout = build(tmp_path, get_layout("promptir-5task"))
    report = check_layout(tmp_path, layout.with_counts({"test/dehaze": 3}))
    assert report.problems == ["test/dehaze/input: 2 images, expected 3"]
    for f in (tmp_path / "test" / "denoise" / "bsd68").iterdir():
        f.unlink()
    report = check_layout(tmp_path, layout)
    assert report.problems == ["test/denoise/bsd68: no images"]


def test_udair_tree(tmp_path: Path) -> None:
    layout = build(tmp_path, get_layout("udair"))
    assert "val/denoising: optional, not present" in check_layout(tmp_path, layout).notes
    png(tmp_path / "val" / "dehazing" / "images" / "a.png")  # a val folder without labels
    shutil.rmtree(tmp_path / "test" / "low-light_lime" / "images")
    report = check_layout(tmp_path, layout)
    assert report.problems == [
        "val/dehazing/labels: missing folder",
        "test/low-light_lime/images: missing folder",
    ]


def test_missing_root_and_file_root(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    report = check_layout(missing, "udair")
    assert report.problems == [f"{missing}: dataset root does not exist"]
    (tmp_path / "file").write_text("x")
    assert check_layout(tmp_path / "file", "paired").problems == [
        f"{tmp_path / 'file'}: is not a folder"
    ]


def test_generic_paired_layout(tmp_path: Path) -> None:
    layout = paired_layout("images", "labels", "stem")
    build(tmp_path, layout)
    assert check_layout(tmp_path, layout).ok
    png(tmp_path / "images" / "zz.png")
    assert check_layout(tmp_path, layout).problems == [
        f"{tmp_path}: 1 image in images/ has no partner in labels/ (zz.png)"
    ]
    with pytest.raises(ConfigError, match="unknown pairing rule"):
        paired_layout(pairing="bogus")


def test_main_check_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    build(tmp_path, get_layout("unpaired"))
    assert main_check(tmp_path, "unpaired") == 0
    assert capsys.readouterr().out.strip().endswith("OK")
    out = io.StringIO()
    assert main_check(tmp_path / "missing", "unpaired", file=out) == 1
    assert "PROBLEM" in out.getvalue() and "dataset root does not exist" in out.getvalue()
    assert out.getvalue().strip().endswith("FAILED: 1 problem")
    build(tmp_path / "p", get_layout("promptir-3task"))
    assert main_check(tmp_path / "p", "promptir-3task", file=io.StringIO()) == 1
    assert main_check(tmp_path / "p", "promptir-3task", strict=False, file=io.StringIO()) == 0
    with pytest.raises(ConfigError, match="unknown dataset layout 'x'; expected one of promptir"):
        main_check(tmp_path, "x")


def test_with_counts_rejects_unknown_path() -> None:
    with pytest.raises(ConfigError, match="has no part 'Train/Nope'"):
        get_layout("promptir-5task").with_counts({"Train/Nope": 1})


def test_datasets_per_task(tmp_path: Path) -> None:
    layout = build(tmp_path, get_layout("promptir-5task"))
    test = layout.paired_datasets(tmp_path, split="test")
    assert sorted(test) == ["gopro", "lol", "rain100l", "sots"]
    item = test["sots"][1]
    assert item["task"] == "haze" and item["name"] == "0001_0.8_0.2.png"
    assert item["input"].shape == item["target"].shape == (3, 8, 8)
    assert abs(float(item["input"][0, 0, 0]) - 11 / 255) < 1e-6
    assert abs(float(item["target"][0, 0, 0]) - 201 / 255) < 1e-6
    train = layout.paired_datasets(tmp_path, split="train")
    assert sorted(train) == ["deblur", "dehaze", "derain", "enhance"]
    assert train["derain"].pairs[0][1].name == "norain-1.png"
    clean = layout.image_datasets(tmp_path, split="test")
    assert sorted(clean) == ["bsd68"] and len(clean["bsd68"]) == N  # optional sets absent
    with pytest.raises(ConfigError, match="has no split 'val'; splits: train, test"):
        layout.paired_datasets(tmp_path, split="val")


def test_udair_datasets(tmp_path: Path) -> None:
    layout = build(tmp_path, get_layout("udair"))
    train = layout.paired_datasets(tmp_path, split="train")
    assert list(train) == ["denoising", "dehazing", "deraining", "low-light", "underwater"]
    assert [d.task for d in train.values()] == ["noise", "haze", "rain", "lowlight", "underwater"]
    assert layout.paired_datasets(tmp_path, split="val") == {}
    test = layout.paired_datasets(tmp_path, split="test")
    assert {"denoising_polyu", "deraining_lhp", "underwater_ufo"} <= set(test)
    assert sorted(layout.image_datasets(tmp_path, split="test")) == [
        "dehazing_urhi",
        "low-light_lime",
    ]
