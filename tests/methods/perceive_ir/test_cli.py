"""The paper network restores and evaluates from the CLI with DINOv2 from a local file; the
one-line error when the file is not given."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import aioir
from aioir.models import save_pretrained
from aioir.nn.dinov2 import DINOV2_BASE, Dinov2Encoder


def _run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "aioir", *args], capture_output=True, text=True, env=env
    )


def _saved_tiny(tmp_path, **overrides):
    torch.manual_seed(0)
    model = aioir.load_model("perceive-ir-tiny", **overrides)
    folder = tmp_path / "model"
    save_pretrained(model, folder)
    return folder


def test_restore_without_dinov2_is_one_line_exit_2(tmp_path, monkeypatch):
    import os

    folder = _saved_tiny(tmp_path)
    image = tmp_path / "in.png"
    aioir.write_image(image, np.full((16, 16, 3), 0.5, np.float32))
    env = {k: v for k, v in os.environ.items() if k != "AIOIR_DINOV2"}
    done = _run("restore", str(image), "--model", str(folder), "--output", str(tmp_path / "o"),
                env=env)  # fmt: skip
    assert done.returncode == 2
    assert "dinov2=PATH" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_restore_and_evaluate_with_a_full_size_dinov2_file(tmp_path):
    g = torch.Generator().manual_seed(0)
    shapes = {k: v.shape for k, v in Dinov2Encoder(DINOV2_BASE).state_dict().items()}
    dinov2 = tmp_path / "dinov2-base"
    dinov2.mkdir()
    save_file({k: torch.randn(s, generator=g) * 0.02 for k, s in shapes.items()},
              dinov2 / "model.safetensors")  # fmt: skip
    folder = _saved_tiny(tmp_path, dinov2=str(dinov2))
    photos = tmp_path / "photos" / "test"
    photos.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(2):
        aioir.write_image(photos / f"p{i}.png", rng.random((40, 48, 3)).astype(np.float32))
    done = _run("restore", str(photos / "p0.png"), "--model", str(folder),
                "--output", str(tmp_path / "out"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "p0.png").is_file()
    done = _run("evaluate", "--model", str(folder), "--benchmark",
                f"synthetic:{tmp_path / 'photos' / 'test'}:noise", "--allow-untrained",
                "--limit", "2",
                "--niqe", "off")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "noise" in done.stdout
