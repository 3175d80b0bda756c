"""``aioir train``: end to end on a tiny fixture corpus, and a 2-process CPU DDP run."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from aioir.cli import train as train_cli

REPO = Path(__file__).parents[2]
CONFIG = REPO / "configs/udair/synthetic.yaml"
SMALL = [
    "data.patch_size=32", "data.items_per_task=4", "data.epoch_length=3", "data.val_items_per_task=1",
    "data.val_size=32", "source_bank.items_per_task=1", "trainer.progress_bar=false",
    "trainer.logger=csv", "trainer.num_threads=1",
]  # fmt: skip


def _corpus(root: Path) -> Path:
    rng = np.random.default_rng(1)
    for split, n in (("train", 2), ("val", 1)):
        (root / split).mkdir(parents=True)
        for i in range(n):
            img = rng.uniform(0.2, 0.8, (40, 48, 3)).repeat(2, 0).repeat(2, 1)[:64, :80]
            Image.fromarray((img * 255).astype(np.uint8)).save(root / split / f"p{i}.png")
    return root


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aioir")
    train_cli.register(parser.add_subparsers(dest="command"))
    return parser


def _sets(items):
    return [a for s in items for a in ("--set", s)]


def test_train_command_end_to_end(tmp_path):
    root = _corpus(tmp_path / "photos")
    out = tmp_path / "run"
    args = _parser().parse_args(
        ["train", "--config", str(CONFIG), "--max-steps", "5", "--output", str(out),
         "--accelerator", "cpu", "--set", f"data.root={root}", *_sets(SMALL)]
    )  # fmt: skip
    assert args.handler(args) == 0
    record = json.loads((out / "training.json").read_text())
    assert record["steps"] == 5 and record["data"]["tasks"][0] == "noise"
    assert len(record["data"]["tasks"]) == 6
    assert (out / "checkpoints/last.ckpt").is_file() and (out / "checkpoints/best.ckpt").is_file()
    export = out / "export"
    assert {p.name for p in export.iterdir()} >= {
        "model.safetensors", "config.json", "bank.safetensors", "training.json"
    }  # fmt: skip
    # resume=auto from a finished run continues to a larger step budget
    args = _parser().parse_args(
        ["train", "--config", str(CONFIG), "--max-steps", "7", "--output", str(out),
         "--resume", "auto", "--set", f"data.root={root}", *_sets(SMALL)]
    )  # fmt: skip
    assert args.handler(args) == 0
    assert json.loads((out / "training.json").read_text())["steps"] == 7


def test_train_command_reports_config_errors(tmp_path, capsys):
    code = train_cli.main(
        ["--config", str(CONFIG), "--set", "data.rooot=x", "--output", str(tmp_path)]
    )
    assert code == 1
    assert "unknown key 'data.rooot'" in capsys.readouterr().err


def test_ddp_two_cpu_processes(tmp_path):
    root = _corpus(tmp_path / "photos")
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src")}
    cmd = [
        sys.executable, "-m", "aioir.cli.train", "--config", str(CONFIG), "--max-steps", "3",
        "--devices", "2", "--accelerator", "cpu", "--output", str(out),
        *_sets([f"data.root={root}", *SMALL, "data.epoch_length=6"]),
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((out / "training.json").read_text())
    assert record["world_size"] == 2
    ranks = record["ddp"]["ranks"]
    assert [r["rank"] for r in ranks] == [0, 1]
    assert all(r["batches"] == 3 for r in ranks)
    assert ranks[0]["digest"] != ranks[1]["digest"]  # each rank trained on different samples
    assert record["ddp"]["weights_in_sync"]
