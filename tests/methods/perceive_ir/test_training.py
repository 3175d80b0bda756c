"""Perceive-IR-lite end to end: stage 1 (perceiver + medium restorer), stage 2 with every loss
term, the per-epoch probe, the exports restoring from the API and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import aioir
from aioir.engine.config import config_from_dict, load_config
from aioir.engine.run import train
from aioir.methods.perceive_ir.artifacts import PerceiverArtifact
from aioir.methods.perceive_ir.perceiver import PERCEIVER_FILE, load_perceiver

CONFIGS = Path(__file__).parents[3] / "configs" / "perceive_ir"
TASKS = {"noise": {"degradations": [{"name": "gaussian_noise", "sigma": [15, 50]}]}, "haze": None}


def _config(root: Path, name: str, **sections):
    raw = {
        "model": {"name": name},
        "data": {
            "kind": "synthetic", "root": str(root), "tasks": TASKS, "patch_size": 32,
            "samples_per_task": 2, "items_per_task": 8, "epoch_length": 2,
            "val_items_per_task": 2, "val_size": 32, "val_batch_size": 4,
        },
        "losses": {"l1": 1.0},
        "optimizer": {"lr": 1e-3},
        "scheduler": {"name": "constant"},
        "trainer": {
            "max_steps": 4, "progress_bar": False, "logger": "csv", "log_every_n_steps": 1,
            "accelerator": "cpu", "devices": 1, "num_threads": 1,
        },
    }  # fmt: skip
    raw.update(sections)
    return config_from_dict(raw, "test")


@pytest.fixture(scope="module")
def stage1(corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("stage1")
    config = _config(
        corpus, "restormer-tiny",
        quality_perceiver={"enabled": True, "margin_db": -100.0, "val_items": 1},
    )  # fmt: skip
    result = train(config, out)
    assert result.export_dir is not None
    return result.export_dir


@pytest.mark.slow
def test_stage1_exports_the_perceiver_beside_the_restorer(stage1):
    assert (stage1 / PERCEIVER_FILE).is_file()
    record = json.loads((stage1 / "training.json").read_text())
    assert record["quality_perceiver"]["steps"] == 4
    assert set(record["quality_perceiver"]["val_accuracy"]) >= {"overall", "low", "medium"}
    model = aioir.load_model(stage1)
    assert isinstance(model.quality_perceiver, PerceiverArtifact)
    assert "quality_perceiver.body.0.weight" not in model.state_dict()
    logits = load_perceiver(stage1)(torch.rand(2, 3, 32, 32))
    assert logits.shape == (2, 3)


@pytest.mark.slow
def test_stage2_lite_trains_with_every_term_and_restores(corpus, stage1, tmp_path):
    losses = {
        "l1": 1.0,
        "degradation_infonce": 0.1,
        "perceiver_quality": {"weight": 0.05, "perceiver": str(stage1)},
        "difficulty_perceptual": {
            "weight": 0.1, "features": "wavelet",
            "proxies": [{"model": str(stage1)}, {"model": str(stage1), "tasks": ["noise"]}],
        },
    }  # fmt: skip
    config = _config(
        corpus, "perceive-ir-lite-tiny", losses=losses, difficulty_probe={"per_task": 2}
    )
    result = train(config, tmp_path / "run")
    assert result.export_dir is not None
    record = json.loads((result.export_dir / "training.json").read_text())
    probe = record["difficulty_probe"]["psnr_by_epoch"]
    assert len(probe) == 2 and all(np.isfinite(probe))
    rows = (tmp_path / "run").rglob("metrics.csv")
    header = next(iter(rows)).read_text().splitlines()[0]
    for name in ("degradation_infonce", "perceiver_quality", "difficulty_perceptual"):
        assert f"train/{name}" in header
    assert "train/difficulty_perceptual_hard_rate" in header
    # API and CLI restore with the export
    image = np.random.default_rng(0).random((21, 27, 3)).astype(np.float32)
    restored = aioir.restore(image, model=str(result.export_dir))
    assert restored.shape == image.shape
    src = tmp_path / "in.png"
    aioir.write_image(src, image)
    done = subprocess.run(
        [sys.executable, "-m", "aioir", "restore", str(src), "--model", str(result.export_dir),
         "--output", str(tmp_path / "out")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "in.png").is_file()


def test_shipped_configs_parse():
    for name in ("stage1-lite.yaml", "lite-synthetic.yaml"):
        cfg = load_config(CONFIGS / name)
        assert cfg.data.kind == "synthetic"
    cfg = load_config(CONFIGS / "lite-synthetic.yaml")
    assert cfg.losses["degradation_infonce"]["weight"] == 0.1
    assert cfg.losses["perceiver_quality"]["weight"] == 0.05
    assert cfg.losses["difficulty_perceptual"]["weight"] == 0.1
    stage1 = load_config(CONFIGS / "stage1.yaml")
    assert stage1.extras["quality_perceiver"].kind == "clip_prompts"
    for name in ("3task.yaml", "5task.yaml"):
        cfg = load_config(CONFIGS / name)
        assert cfg.model.name == "perceive-ir" and cfg.data.patch_size == 256
        weights = {k: v if isinstance(v, float) else v["weight"] for k, v in cfg.losses.items()}
        assert weights == {
            "l1": 1.0, "degradation_infonce": 0.1, "clip_quality": 0.05,
            "difficulty_perceptual": 0.1,
        }  # fmt: skip


def test_paper_configs_name_each_missing_file(monkeypatch):
    from aioir.errors import ConfigError
    from aioir.losses import CompositeLoss

    cfg = load_config(CONFIGS / "3task.yaml")
    with pytest.raises(ConfigError, match=r"losses\.clip_quality\.clip"):
        CompositeLoss(cfg.losses)
    cfg = load_config(CONFIGS / "3task.yaml", ["losses={l1: 1, difficulty_perceptual: 0.1}"])
    with pytest.raises(ConfigError, match=r"losses\.difficulty_perceptual\.vgg16"):
        CompositeLoss(cfg.losses)
    monkeypatch.delenv("AIOIR_DINOV2", raising=False)
    model = aioir.load_model(cfg.model.name + "-tiny", **cfg.model.overrides)
    with pytest.raises(ConfigError, match="dinov2=PATH"):
        model(torch.rand(1, 3, 8, 8))
