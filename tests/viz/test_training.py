"""Training logs are read from a run folder (CSV or training.json) and drawn as curves."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from PIL import Image

from aioir import cli
from aioir.errors import ConfigError, ImageWriteError
from aioir.viz.training import plot_training, read_training_log

TASKS = ("noise", "blur", "clean")


def _write_csv(run: Path, version: int, steps: int, *, gains: bool = True) -> Path:
    """A log in the shape Lightning's CSVLogger writes: one row per logging call, blanks elsewhere."""
    path = run / "logs" / f"version_{version}" / "metrics.csv"
    path.parent.mkdir(parents=True)
    fields = ["epoch", "step", "train/loss", "train/l1", "train/cscl_scale", "train/lr"]
    for t in TASKS:
        fields += [f"val/{t}/psnr"] + (
            [f"val/{t}/input_psnr", f"val/{t}/gain"] if gains and t != "clean" else []
        )
    fields += ["val/psnr"] + (["val/min_gain"] if gains else [])
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fields)
        w.writeheader()
        for step in range(0, steps, 5):
            w.writerow({"epoch": 0, "step": step, "train/loss": 1.0 / (step + 1), "train/l1": 0.5,
                        "train/cscl_scale": 20.0, "train/lr": 1e-4})  # fmt: skip
            if step % 20 == 19 - 4:  # a validation every 20 steps
                row = {"epoch": 0, "step": step, "val/psnr": 25.0 + step / 100}
                for i, t in enumerate(TASKS):
                    row[f"val/{t}/psnr"] = 20.0 + i + step / 100
                    if gains and t != "clean":
                        row[f"val/{t}/input_psnr"] = 21.0 + i
                        row[f"val/{t}/gain"] = step / 100 - 1.0
                if gains:
                    row["val/min_gain"] = step / 100 - 1.0
                w.writerow(row)
    return path


def test_read_csv_log_takes_the_newest_version_and_splits_train_from_val(tmp_path):
    _write_csv(tmp_path, 0, 40)
    newest = _write_csv(tmp_path, 10, 100)  # version_10 sorts after version_2, not before it
    _write_csv(tmp_path, 2, 60)
    log = read_training_log(tmp_path)
    assert log.source == newest
    assert set(log.train) == {"loss", "l1", "cscl_scale", "lr"}
    assert log.train["loss"][:2] == [(0, 1.0), (5, pytest.approx(1 / 6))]
    assert log.tasks == list(TASKS)
    assert [s for s, _ in log.series("val/psnr")] == [15, 35, 55, 75, 95]
    assert log.series("val/min_gain")[-1] == (95, pytest.approx(-0.05))
    assert log.series("val/clean/gain") == []


def test_plot_draws_a_gain_panel_only_when_the_gain_was_logged(tmp_path):
    _write_csv(tmp_path / "new", 0, 100)
    _write_csv(tmp_path / "old", 0, 100, gains=False)
    widths = {}
    for name in ("new", "old"):
        out = plot_training(read_training_log(tmp_path / name), tmp_path / f"{name}.png")
        widths[name] = Image.open(out).size[0]
    assert widths["new"] > 1.4 * widths["old"]  # three panels against two
    with pytest.raises(ImageWriteError, match="exists"):
        plot_training(read_training_log(tmp_path / "new"), tmp_path / "new.png")
    plot_training(read_training_log(tmp_path / "new"), tmp_path / "new.png", overwrite=True)


def test_a_log_without_validation_yet_is_drawn(tmp_path, recwarn):
    _write_csv(tmp_path / "early", 0, 10)  # the first validation comes at step 15
    log = read_training_log(tmp_path / "early")
    assert log.val == [] and len(log.train["loss"]) == 2
    plot_training(log, tmp_path / "early.png")
    assert not [w for w in recwarn if "artists" in str(w.message)]


def test_training_json_fallback_and_errors(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    with pytest.raises(ConfigError, match="no training log"):
        read_training_log(run)
    history = [{"step": 10, "val/psnr": 24.0, "val/noise/psnr": 24.0, "val/noise/gain": 1.5,
                "val/min_gain": 1.5}]  # fmt: skip
    (run / "training.json").write_text(json.dumps({"val_history": history}))
    log = read_training_log(run)
    assert log.train == {} and log.series("val/noise/gain") == [(10, 1.5)]
    plot_training(log, tmp_path / "fallback.png")
    (run / "training.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"training\.json: not an aioir training record"):
        read_training_log(run)
    with pytest.raises(ConfigError, match="folder does not exist"):
        read_training_log(tmp_path / "nope")
    bad = tmp_path / "bad"
    (bad / "logs/version_0").mkdir(parents=True)
    (bad / "logs/version_0/metrics.csv").write_text("epoch,loss\n0,1\n")
    with pytest.raises(ConfigError, match=r"metrics\.csv: not an aioir training log"):
        read_training_log(bad)


def test_cli_viz_training(tmp_path, capsys):
    _write_csv(tmp_path / "run", 0, 100)
    out = tmp_path / "curves.png"
    assert cli.main(["viz", "training", str(tmp_path / "run"), "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "5 validations" in err and "last val/min_gain -0.05 dB at step 95" in err
    assert Image.open(out).size[0] > 1000
    assert cli.main(["viz", "training", str(tmp_path / "run"), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.strip() == f"aioir: error: {out}: exists; pass --overwrite to replace it"
    assert cli.main(["viz", "training", str(tmp_path / "none"), "-o", str(tmp_path / "x.png")]) == 1
    assert "folder does not exist" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()
