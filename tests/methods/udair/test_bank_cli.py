"""``aioir bank``: rebuild a saved UDAIR's source bank (new folder or in place), one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from aioir import cli
from aioir.methods.udair.bank import SourceBank
from aioir.models import load_model
from udair_helpers import TASKS, build_tiny_udair

CONFIG = """\
model: {name: udair-tiny}
data:
  kind: synthetic
  root: null
  tasks: {noise: {degradations: [{name: gaussian_noise, sigma: [10, 40]}]}, haze: {}, lowlight: {}}
  patch_size: 32
  samples_per_task: 1
  items_per_task: 2
trainer: {seed: 7, max_steps: 1}
source_bank: {items_per_task: 3, batch_size: 4}
"""


def _corpus(root: Path) -> Path:
    rng = np.random.default_rng(1)
    for split, n in (("train", 2), ("val", 1)):
        (root / split).mkdir(parents=True)
        for i in range(n):
            img = rng.uniform(0.2, 0.8, (40, 48, 3)).repeat(2, 0).repeat(2, 1)[:64, :80]
            Image.fromarray((img * 255).astype(np.uint8)).save(root / split / f"p{i}.png")
    return root


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("bank")
    model = build_tiny_udair(base / "model")
    config = base / "tiny.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    return {"model": model, "config": config, "root": _corpus(base / "photos")}


def _args(setup, *extra: str) -> list[str]:
    return ["bank", "--model", str(setup["model"]), "--config", str(setup["config"]),
            "--set", f"data.root={setup['root']}", "-q", *extra]  # fmt: skip


def test_bank_writes_a_new_model_folder_with_statistics(setup, tmp_path, capsys):
    before = {p.name: p.read_bytes() for p in setup["model"].iterdir()}
    out = tmp_path / "rebuilt"
    assert cli.main(_args(setup, "--output", str(out))) == 0, capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in setup["model"].iterdir()} == before  # untouched
    assert sorted(p.name for p in out.iterdir()) == [
        "bank.safetensors", "config.json", "model.safetensors"
    ]  # fmt: skip
    assert (out / "model.safetensors").read_bytes() == before["model.safetensors"]
    bank = SourceBank.load(out)
    assert bank.has_statistics and bank.task_names == TASKS
    meta = bank.metadata
    assert meta["count"] == [3, 3, 3] and meta["patch_size"] == 32 and meta["seed"] == 7
    assert meta["dtype"] == "float16" and meta["built_by"] == "aioir bank"
    config = json.loads((out / "config.json").read_text())
    assert config["metadata"]["source_bank"] == "bank.safetensors"
    model = load_model(out)
    assert model.source_bank.has_statistics
    # the new bank's mean maps are those of the same crops through the same model
    reference = load_model(setup["model"])
    for lv in ("g4", "g3", "g2"):
        assert model.source_bank.levels[lv].shape == reference.source_bank.levels[lv].shape
    # the same command again: deterministic (fixed crops), and it refuses to clobber
    assert cli.main(_args(setup, "--output", str(out))) == 1
    assert "exists" in capsys.readouterr().err
    again = tmp_path / "again"
    assert cli.main(_args(setup, "--output", str(again), "--dtype", "float32")) == 0
    other = SourceBank.load(again)
    for lv in ("g4", "g3", "g2"):
        torch.testing.assert_close(other.covs[lv], bank.covs[lv], rtol=2e-3, atol=1e-6)
    assert cli.main(_args(setup, "--output", str(out), "--overwrite", "--items-per-task", "2")) == 0
    assert SourceBank.load(out).metadata["count"] == [2, 2, 2]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporaries


def test_bank_in_place_needs_overwrite_and_replaces_only_the_bank(setup, tmp_path, capsys):
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(setup["model"], folder)
    weights = (folder / "model.safetensors").read_bytes()
    args = ["bank", "--model", str(folder), "--config", str(setup["config"]),
            "--set", f"data.root={setup['root']}", "-q", "--in-place"]  # fmt: skip
    assert cli.main(args) == 1
    err = capsys.readouterr().err
    assert "--overwrite" in err and err.count("\n") == 1
    assert not SourceBank.load(folder).has_statistics
    assert cli.main([*args, "--overwrite"]) == 0, capsys.readouterr().err
    assert SourceBank.load(folder).has_statistics
    assert (folder / "model.safetensors").read_bytes() == weights
    assert sorted(p.name for p in folder.iterdir()) == [
        "bank.safetensors", "config.json", "model.safetensors"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ((), "either --output"),
        (("--output", "{model}"), "model folder itself"),
        (("--output", "{tmp}/o", "--set", "data.tasks={{noise: {{}}}}"), "differ from the model"),
        (("--output", "{tmp}/o", "--set", "data.root={tmp}/nowhere"), "nowhere"),
        (("--output", "{tmp}/o", "--set", "data.bogus=1"), "bogus"),
    ],
)
def test_bank_bad_inputs_are_one_line_errors(setup, tmp_path, capsys, extra, message):
    extra = tuple(e.format(model=setup["model"], tmp=tmp_path) for e in extra)
    assert cli.main(_args(setup, *extra)) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and err.startswith("aioir: error:")
    assert not (tmp_path / "o").exists()


def test_bank_refuses_models_that_cannot_have_a_bank(setup, tmp_path, capsys):
    from aioir.models import save_pretrained

    restormer = tmp_path / "restormer"
    save_pretrained(load_model("restormer-tiny"), restormer)
    base = ["--config", str(setup["config"]), "--output", str(tmp_path / "o"), "-q"]
    for model, message in (
        (restormer, "UDAIR only"),
        (tmp_path / "missing", "no such model folder"),
        (restormer / "model.safetensors", "not a saved-model folder"),
    ):
        assert cli.main(["bank", "--model", str(model), *base]) == 1
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
    with pytest.raises(SystemExit) as exc:  # usage errors: exit 2
        cli.main(["bank", "--model", str(restormer), *base, "--in-place"])
    assert exc.value.code == 2
