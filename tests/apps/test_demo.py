"""``aioir.apps.demo.run_demo``: files, page, metrics that match the files, TTA column, safe outputs."""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from aioir.apps import demo
from aioir.apps.demo import pipeline
from aioir.data.samples import sample_images
from aioir.data.synthetic import SyntheticDegradationDataset
from aioir.errors import ConfigError
from aioir.io import read_image, to_uint8
from aioir.metrics import get_protocol
from aioir.models import create_model, load_model
from aioir.restore.resolve import shipped_weights
from udair_helpers import TASKS as BANK_TASKS
from udair_helpers import build_tiny_udair

SIZE = 48
PHOTOS = [p.stem for p in sample_images()]


def _tiny() -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("udair-tiny")


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory):
    """Two tasks, a model without a source bank (so the TTA column is skipped with a note)."""
    out = tmp_path_factory.mktemp("demo") / "out"
    result = demo.run_demo(out, model=_tiny(), size=SIZE, tasks=("noise", "haze"), progress=False)
    return out, result


@pytest.fixture(scope="module")
def tta_run(tmp_path_factory):
    """One task with a tiny UDAIR that has a source bank: the TTA column is there."""
    model = load_model(build_tiny_udair(tmp_path_factory.mktemp("bank") / "m"))
    out = tmp_path_factory.mktemp("demo_tta") / "out"
    result = demo.run_demo(out, model=model, size=SIZE, tasks=("rain",), progress=False)
    return out, result


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# ------------------------------------------------------------------ files and page
def test_writes_every_file_at_the_asked_size(plain_run):
    out, result = plain_run
    assert result.photos == tuple(PHOTOS) and len(PHOTOS) == 5
    for name in ("grid.png", "index.html", "metrics.json", "metrics.csv"):
        assert (out / name).is_file()
    for photo in PHOTOS:
        clean = read_image(out / "clean" / f"{photo}.png")
        assert max(clean.shape[:2]) == SIZE
        for task in ("noise", "haze"):
            for column in ("degraded", "restored"):
                assert read_image(out / column / task / f"{photo}.png").shape == clean.shape
    assert not (out / "restored_tta").exists()
    assert sorted(result.files) == sorted(p for p in out.rglob("*") if p.is_file())
    assert len(result.files) == 5 + 2 * 2 * 5 + 4
    assert _hidden(out.parent) == []  # no staging or trash folder left behind
    grid = read_image(out / "grid.png")
    assert grid.shape[0] > 160 and grid.shape[1] > 3 * 160  # 2 rows × 3 columns of cells


def test_page_links_only_to_files_that_exist(plain_run):
    out, result = plain_run
    page = (out / "index.html").read_text(encoding="utf-8")
    links = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert "grid.png" in links and "metrics.json" in links
    for link in links:
        assert "://" not in link and not link.startswith("/"), link
        assert (out / link).is_file(), link
    for im in result.images:  # every image of the demo is shown
        assert all(rel in links for rel in im.files.values())
    assert "<script" not in page and "http" not in page
    assert "protocol clean:" in page and "Sander Klootwijk" in page  # protocol and credits


def test_metrics_equal_what_aioir_metrics_gives_on_the_written_files(plain_run):
    out, _ = plain_run
    data = json.loads((out / "metrics.json").read_text())
    proto = get_protocol("clean")
    assert data["protocol"]["name"] == "clean"
    assert len(data["images"]) == 10
    for entry in data["images"]:
        clean = read_image(out / entry["files"]["clean"])
        for column in ("degraded", "restored"):
            expected = proto.score(read_image(out / entry["files"][column]), clean)
            got = entry[column]
            assert math.isfinite(got["psnr"]) and 0.0 < got["ssim"] <= 1.0
            assert got["psnr"] == pytest.approx(expected["psnr"], abs=1e-4)
            assert got["ssim"] == pytest.approx(expected["ssim"], abs=1e-5)
        assert entry["restored_tta"] is None
    # the summary is the mean of the per-image numbers, and "mean" the mean of the tasks
    for task in ("noise", "haze"):
        rows = [e for e in data["images"] if e["task"] == task]
        mean = np.mean([e["restored"]["psnr"] for e in rows])
        assert data["summary"][task]["restored"]["psnr"] == pytest.approx(mean)
    both = [data["summary"][t]["degraded"]["ssim"] for t in ("noise", "haze")]
    assert data["summary"]["mean"]["degraded"]["ssim"] == pytest.approx(np.mean(both))
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert len(rows) == 10
    first = data["images"][0]
    assert float(rows[0]["restored_psnr"]) == pytest.approx(first["restored"]["psnr"], abs=1e-3)


def test_degradations_are_the_seeded_dataset_items(plain_run):
    out, _ = plain_run
    clean = sorted((out / "clean").glob("*.png"))
    data = SyntheticDegradationDataset(
        clean, ["haze"], patch_size=None, severity="moderate", seed=0, deterministic=True
    )
    item = data[PHOTOS.index("life")]  # seeded by task and photo name, not by position
    expected = to_uint8(item["input"].permute(1, 2, 0).numpy())
    written = to_uint8(read_image(out / "degraded" / "haze" / "life.png"))
    np.testing.assert_array_equal(written, expected)
    assert not np.array_equal(written, to_uint8(read_image(out / "clean" / "life.png")))


def test_table_states_the_protocol_first_and_notes_the_skipped_tta(plain_run):
    _, result = plain_run
    lines = result.table().splitlines()
    assert lines[0] == get_protocol("clean").header()
    assert lines[1].startswith("| task") and "restored PSNR / SSIM" in lines[1]
    assert [ln.split("|")[1].strip() for ln in lines[3:6]] == ["noise", "haze", "mean"]
    assert not result.tta and "source bank" in (result.tta_note or "")
    assert any(ln.startswith("restored + TTA skipped:") for ln in lines)


def test_tta_column_with_a_source_bank(tta_run):
    out, result = tta_run
    assert result.tta and result.tta_note is None
    assert "restored + TTA PSNR / SSIM" in result.table()
    proto = get_protocol("clean")
    for im in result.images:
        assert im.tta_reference in BANK_TASKS
        path = out / im.files["restored_tta"]
        assert path == out / "restored_tta" / "rain" / f"{im.photo}.png"
        score = proto.score(read_image(path), read_image(out / im.files["clean"]))
        assert im.restored_tta is not None
        assert im.restored_tta.psnr == pytest.approx(score["psnr"], abs=1e-4)
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "restored_tta/rain/bridge.png" in page and "source cluster:" in page


# ------------------------------------------------------------------ refusing and replacing
def test_refuses_a_non_empty_folder_without_overwrite(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match=r"out: folder exists; pass --overwrite"):
        demo.run_demo(out, model=_tiny(), size=SIZE, tasks=("noise",), progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    assert _hidden(tmp_path) == []


def test_refuses_a_file_and_bad_arguments_before_any_work(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="not a folder"):
        demo.run_demo(tmp_path / "file", model=_tiny(), progress=False)
    bad = [
        {"size": 8},
        {"tasks": ("noise", "fog")},
        {"tasks": ("noise", "noise")},
        {"tasks": ()},
        {"severity": "extreme"},
    ]
    for kwargs in bad:
        with pytest.raises(ConfigError):
            demo.run_demo(tmp_path / "new", model=_tiny(), progress=False, **kwargs)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_overwrite_replaces_the_demo_files_and_keeps_others(tmp_path):
    out = tmp_path / "out"
    (out / "restored" / "rain").mkdir(parents=True)
    (out / "restored" / "rain" / "old.png").write_bytes(b"stale")
    (out / "restored_tta" / "rain").mkdir(parents=True)
    (out / "restored_tta" / "rain" / "old.png").write_bytes(b"stale")
    (out / "metrics.json").write_text("{}")
    (out / "notes.txt").write_text("mine")
    result = demo.run_demo(
        out, model=_tiny(), size=SIZE, tasks=("blur",), tta=False, overwrite=True, progress=False
    )
    assert (out / "notes.txt").read_text() == "mine"
    assert not (out / "restored" / "rain").exists()  # the old run's entries are gone
    assert not (out / "restored_tta").exists()  # also those this run does not write
    assert json.loads((out / "metrics.json").read_text())["tasks"] == ["blur"]
    assert result.tta_note and "--no-tta" in result.tta_note
    assert _hidden(tmp_path) == []


def test_a_failure_leaves_the_folder_as_it_was(tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "metrics.json").write_text("{}")

    def boom(*args, **kwargs):
        raise RuntimeError("grid failed")

    monkeypatch.setattr(pipeline, "grid", boom)
    with pytest.raises(RuntimeError, match="grid failed"):
        demo.run_demo(
            out, model=_tiny(), size=SIZE, tasks=("noise",), overwrite=True, progress=False
        )
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json"]
    assert (out / "metrics.json").read_text() == "{}"
    assert _hidden(tmp_path) == []


@pytest.mark.skipif(shipped_weights("default") is None, reason="no default model shipped")
def test_shipped_default_model_runs(tmp_path):
    result = demo.run_demo(
        tmp_path / "d", size=32, tasks=("underwater",), tta=False, progress=False
    )
    assert result.model.startswith("default")
    restored = result.summary()["underwater"]["restored"]
    assert math.isfinite(restored.psnr) and math.isfinite(restored.ssim)
