"""ABAIR's three phases through ``aioir train``'s engine, and the unseen-task extension."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from aioir.engine.config import config_from_dict
from aioir.errors import ConfigError
from aioir.methods.abair.training import ABAIRTrainingConfig, copy_from_saved
from aioir.models import load_model, save_model
from aioir.nn.adapters import lora_parameters
from helpers import make_corpus

TASKS = ["noise", "rain", "haze", "lowlight", "blur"]


def _config(root: Path, **sections):
    raw = {
        "model": {"name": "abair-tiny"},
        "data": {
            "kind": "synthetic", "root": str(root), "tasks": TASKS, "patch_size": 32,
            "samples_per_task": 1, "items_per_task": 4, "epoch_length": 2,
            "val_items_per_task": 1, "val_size": 32, "val_batch_size": 5,
        },
        "losses": {"l1": 1.0},
        "optimizer": {"lr": 1e-3},
        "trainer": {
            "max_steps": 2, "progress_bar": False, "logger": "none", "accelerator": "cpu",
            "devices": 1, "num_threads": 1,
        },
    }  # fmt: skip
    for key, value in sections.items():
        raw[key] = {**raw.get(key, {}), **value} if isinstance(value, dict) else value
    return config_from_dict(raw, "test")


def test_section_parses_and_validates(tmp_path: Path) -> None:
    config = _config(tmp_path, abair={"phase": "adapters", "train_tasks": ["haze"]})
    assert config.extras["abair"] == ABAIRTrainingConfig("adapters", None, ["haze"])
    assert _config(tmp_path).extras["abair"].phase == ""  # absent: no ABAIR phase
    with pytest.raises(ConfigError, match=r"abair\.phase"):
        _config(tmp_path, abair={"phase": "finetune"})
    with pytest.raises(ConfigError, match="train_tasks"):
        _config(tmp_path, abair={"phase": "estimator", "train_tasks": ["haze"]})
    with pytest.raises(ConfigError, match="cutmix"):
        _config(tmp_path, data={"kind": "udair", "cutmix": True})


def test_copy_from_saved_maps_adapters_by_task(tmp_path: Path) -> None:
    torch.manual_seed(0)
    base = load_model("abair-tiny")
    with torch.no_grad():
        for p in lora_parameters(base):
            p.normal_()
    save_model(base, tmp_path / "base")
    grown = load_model("abair-tiny", tasks=["haze", "jpeg", "noise"])
    assert copy_from_saved(grown, tmp_path / "base") == ["noise", "haze"]
    old, new = base.state_dict(), grown.state_dict()
    assert torch.equal(new["latent.0.attn.qkv.lora_B.0"], old["latent.0.attn.qkv.lora_B.2"])
    assert torch.equal(new["latent.0.attn.qkv.lora_B.2"], old["latent.0.attn.qkv.lora_B.0"])
    assert not new["latent.0.attn.qkv.lora_B.1"].any()  # jpeg: a fresh adapter
    assert torch.equal(new["estimator.head.weight"][0], old["estimator.head.weight"][2])
    assert torch.equal(new["patch_embed.proj.weight"], old["patch_embed.proj.weight"])


def _same(a: dict, b: dict, keys: list[str]) -> None:
    for k in keys:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.slow
def test_three_phases_then_a_new_jpeg_task_keep_frozen_parts_bit_identical(
    tmp_path: Path,
) -> None:
    from aioir.engine.run import train

    root = make_corpus(tmp_path / "corpus")
    r1 = train(
        _config(
            root, model={"overrides": {"tasks": [], "segmentation_classes": 6}},
            data={"cutmix": True}, losses={"l1": 1.0, "abair_segmentation": 0.1},
            abair={"phase": "pretrain"},
        ),
        tmp_path / "p1",
    )  # fmt: skip
    pre = load_model(r1.export_dir)
    assert pre.segmentation_head is None and pre.tasks == []
    assert not any(k.startswith("segmentation_head") for k in pre.state_dict())
    r2 = train(
        _config(root, abair={"phase": "adapters", "base": str(r1.export_dir)}), tmp_path / "p2"
    )
    adapted = load_model(r2.export_dir)
    backbone = list(pre.state_dict())
    _same(adapted.state_dict(), pre.state_dict(), backbone)
    assert any(p.abs().sum() > 0 for n, p in adapted.named_parameters() if "lora_B" in n)
    r3 = train(
        _config(root, losses={"abair_estimator": 1.0}, abair={"phase": "estimator", "base": str(r2.export_dir)}),
        tmp_path / "p3",
    )  # fmt: skip
    five = load_model(r3.export_dir)
    not_estimator = [k for k in five.state_dict() if not k.startswith("estimator.")]
    _same(five.state_dict(), adapted.state_dict(), not_estimator)
    assert not torch.equal(five.estimator.head.weight, adapted.estimator.head.weight)

    six = ["noise", "rain", "haze", "lowlight", "blur", "jpeg"]
    jpeg = {"jpeg": {"degradations": ["jpeg"], "severity": [0.65, 1.0]}}
    r4 = train(
        _config(
            root, model={"overrides": {"tasks": six}}, data={"tasks": jpeg},
            abair={"phase": "adapters", "base": str(r3.export_dir), "train_tasks": ["jpeg"]},
        ),
        tmp_path / "p4",
    )  # fmt: skip
    all_tasks = {t: {} for t in TASKS} | jpeg
    r5 = train(
        _config(
            root, model={"overrides": {"tasks": six}}, data={"tasks": all_tasks},
            losses={"abair_estimator": 1.0}, abair={"phase": "estimator", "base": str(r4.export_dir)},
        ),
        tmp_path / "p5",
    )  # fmt: skip
    final = load_model(r5.export_dir)
    assert final.tasks == six and final.estimator.num_tasks == 6
    kept = [k for k in five.state_dict() if not k.startswith("estimator.")]
    _same(final.state_dict(), five.state_dict(), kept)  # backbone + the five old adapters
    new_adapter = [k for k in final.state_dict() if k.endswith("lora_B.5")]
    assert any(final.state_dict()[k].abs().sum() > 0 for k in new_adapter)
