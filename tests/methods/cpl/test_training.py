"""``aioir train`` with CPL's configs: a tiny end-to-end run, its export, VGG weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import aioir
from aioir.cli import main
from aioir.engine.config import load_config
from aioir.nn.vgg import VGG16Features
from helpers import make_corpus

REPO = Path(__file__).parents[3]
CONFIGS = REPO / "configs" / "cpl"
SMALL = [
    "data.patch_size=32", "data.items_per_task=2", "data.epoch_length=2", "data.batch_size=3",
    "data.val_items_per_task=1", "data.val_size=32", "trainer.progress_bar=false",
    "trainer.logger=csv", "trainer.num_threads=1", "trainer.max_epochs=null",
    "trainer.log_every_n_steps=1",
]  # fmt: skip


def _sets(items: list[str]) -> list[str]:
    return [a for s in items for a in ("--set", s)]


@pytest.mark.parametrize("name", ["3task", "5task", "synthetic"])
def test_configs_parse(name: str) -> None:
    config = load_config(CONFIGS / f"{name}.yaml")
    assert config.model.name.startswith("cpl")
    assert {"cpr", "cpr-selffeat"} & set(config.losses)


@pytest.mark.slow  # ~10 s on 2 shared cores
def test_train_synthetic_end_to_end(tmp_path: Path) -> None:
    root = make_corpus(tmp_path / "photos", n_train=2, n_val=1)
    out = tmp_path / "run"
    code = main(
        ["train", "--config", str(CONFIGS / "synthetic.yaml"), "--max-steps", "3",
         "--output", str(out), "--accelerator", "cpu", "--set", f"data.root={root}",
         *_sets([*SMALL, "model.overrides={router: {name: topk, k: 2}}"])]
    )  # fmt: skip
    assert code == 0
    record = json.loads((out / "training.json").read_text())
    assert record["steps"] == 3
    metrics = (out / "logs").rglob("metrics.csv")
    header = next(iter(metrics)).read_text().splitlines()[0]
    assert "train/cpr-selffeat" in header and "train/cpr-selffeat_push" in header
    model = aioir.load_model(out / "export")
    assert model.prompt1.router.active == 2  # the router travels in config.json
    restored = aioir.restore(torch.rand(3, 24, 24), model=model)
    assert restored.shape == (3, 24, 24)


def test_train_with_vgg_weights_and_without(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = make_corpus(tmp_path / "photos", n_train=2, n_val=1)
    paper_loss = "losses={l1: 1.0, cpr: {weight: 1.0e-3, negatives: 2}}"
    args = ["train", "--config", str(CONFIGS / "synthetic.yaml"), "--max-steps", "1",
            "--accelerator", "cpu", "--set", f"data.root={root}", *_sets([*SMALL, paper_loss])]  # fmt: skip
    code = main([*args, "--output", str(tmp_path / "none")])
    assert code == 1
    err = capsys.readouterr().err.strip()
    assert "--vgg-weights PATH" in err and len(err.splitlines()) == 1
    vgg = tmp_path / "vgg16.pth"
    torch.manual_seed(0)
    torch.save(VGG16Features("relu5_3").state_dict(), vgg)  # torchvision's features layout
    out = tmp_path / "run"
    assert main([*args, "--output", str(out), "--vgg-weights", str(vgg)]) == 0
    config = load_config(out / "config.yaml")  # the run's config records the file used
    assert config.losses["cpr"]["vgg_weights"] == str(vgg)
