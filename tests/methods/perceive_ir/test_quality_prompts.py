"""The CLIP quality prompts (stage 1 of the paper) and the clip_quality loss."""

from __future__ import annotations

import gzip
import json

import pytest
import torch
import torch.nn.functional as F

from aioir.errors import CheckpointError, ConfigError
from aioir.losses import CompositeLoss, LossInputs
from aioir.methods.perceive_ir.quality_prompts import (
    QualityPromptLearner,
    QualityPromptScorer,
    load_quality_prompts,
    load_quality_scorer,
    read_quality_prompts,
    save_quality_prompts,
)
from aioir.nn import clip as clip_module
from aioir.nn.clip import CLIP, ClipConfig, load_clip

SMALL = ClipConfig(
    embed_dim=8, image_resolution=32, vision_width=64, vision_layers=1, vision_patch_size=16,
    context_length=24, vocab_size=49408, text_width=16, text_heads=2, text_layers=1,
)  # fmt: skip


@pytest.fixture
def clip_file(tmp_path):
    g = torch.Generator().manual_seed(0)
    state = {
        k: torch.randn(v.shape, generator=g) * 0.05 for k, v in CLIP(SMALL).state_dict().items()
    }
    state["logit_scale"] = torch.tensor(4.6052)  # log 100, as CLIP
    torch.save(state, tmp_path / "ViT-B-32.pt")
    return tmp_path / "ViT-B-32.pt"


def _vocab(path):
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("#version: 0.2\nterri ble</w>\nmedi ocre</w>\nexcell ent</w>\n")
    return path


def test_learner_prompts_and_initial_class_words(clip_file, tmp_path):
    clip = load_clip(clip_file, SMALL)
    learner = QualityPromptLearner(clip, 16, _vocab(tmp_path / "bpe.txt.gz"))
    prompts = learner()
    assert prompts.shape == (3, 24, 16)
    assert (learner.eot == 17).all()
    words = clip.token_embedding(torch.tensor([512, 513, 514]))
    assert torch.equal(learner.context[:, -1].detach(), words)
    assert torch.equal(prompts[:, 0], clip.token_embedding.weight[49406].expand(3, -1))
    assert [n for n, p in learner.named_parameters()] == ["context"]


def test_scorer_gradients_reach_only_the_context(clip_file):
    clip = load_clip(clip_file, SMALL)
    learner = QualityPromptLearner(clip, 4)
    scorer = QualityPromptScorer(clip, learner)
    cos = scorer(torch.rand(2, 3, 20, 20))
    assert cos.shape == (2, 3) and cos.abs().max() <= 1 + 1e-5
    F.cross_entropy(100 * cos, torch.tensor([0, 2])).backward()
    assert learner.context.grad is not None and learner.context.grad.abs().sum() > 0
    assert all(p.grad is None for p in clip.parameters())


def test_prompts_file_round_trip_and_the_stage2_scorer(clip_file, tmp_path):
    clip = load_clip(clip_file, SMALL)
    learner = QualityPromptLearner(clip, 4)
    path = save_quality_prompts(learner.context, learner.words, tmp_path / "p.safetensors")
    context, words = read_quality_prompts(path)
    assert torch.equal(context, learner.context.detach()) and words == learner.words
    again = load_quality_prompts(path, clip)
    assert torch.equal(again().detach(), learner().detach())
    with pytest.raises(CheckpointError, match="quality prompts file not found"):
        read_quality_prompts(tmp_path / "none")


def test_clip_quality_loss(clip_file, tmp_path, monkeypatch):
    clip = load_clip(clip_file, SMALL)
    learner = QualityPromptLearner(clip, 4)
    prompts = save_quality_prompts(learner.context, learner.words, tmp_path / "p.safetensors")
    monkeypatch.setattr(clip_module, "load_clip", lambda path: load_clip(path, SMALL))
    loss = CompositeLoss({"clip_quality": {"clip": str(clip_file), "prompts": str(prompts)}})
    pred = torch.rand(2, 3, 16, 16, requires_grad=True)
    value, _ = loss(LossInputs(pred, pred.detach()))
    # no logit scale: the softmax over three cosines stays near uniform (the authors' code)
    assert 0.5 < value.item() < 0.8
    value.backward()
    assert pred.grad is not None
    scorer = load_quality_scorer(clip_file, prompts, logit_scale=100.0)
    assert scorer.scale == 100.0


def test_clip_quality_missing_files_name_the_keys(tmp_path):
    with pytest.raises(ConfigError, match=r"losses\.clip_quality\.clip: set it"):
        CompositeLoss({"clip_quality": {"prompts": "p"}})
    with pytest.raises(ConfigError, match=r"losses\.clip_quality\.prompts: set it"):
        CompositeLoss({"clip_quality": {"clip": "c"}})
    with pytest.raises(ConfigError, match=r"losses\.clip_quality: .*CLIP weights file not found"):
        CompositeLoss({"clip_quality": {"clip": str(tmp_path / "c.pt"), "prompts": "p"}})


@pytest.mark.slow
def test_stage1_with_clip_prompts_trains_and_exports(corpus, clip_file, tmp_path, monkeypatch):
    from aioir.engine.config import config_from_dict
    from aioir.engine.run import train
    from aioir.models import load_model

    monkeypatch.setattr(clip_module, "load_clip", lambda path: load_clip(path, SMALL))
    raw = {
        "model": {"name": "restormer-tiny"},
        "data": {
            "kind": "synthetic", "root": str(corpus), "patch_size": 32,
            "tasks": {"noise": {"degradations": [{"name": "gaussian_noise", "sigma": [15, 50]}]},
                      "haze": None},
            "samples_per_task": 2, "items_per_task": 4, "epoch_length": 2,
            "val_items_per_task": 2, "val_size": 32, "val_batch_size": 4,
        },
        "scheduler": {"name": "constant"},
        "trainer": {"max_steps": 2, "progress_bar": False, "logger": "csv",
                    "accelerator": "cpu", "devices": 1, "num_threads": 1},
        "quality_perceiver": {"enabled": True, "kind": "clip_prompts", "clip": str(clip_file),
                              "context_length": 4, "margin_db": -100.0, "val_items": 1},
    }  # fmt: skip
    result = train(config_from_dict(raw, "test"), tmp_path / "run")
    assert result.export_dir is not None
    record = json.loads((result.export_dir / "training.json").read_text())
    assert record["quality_perceiver"]["kind"] == "clip_prompts"
    assert record["quality_perceiver"]["steps"] == 2
    model = load_model(result.export_dir)
    assert model.quality_prompts.context.shape == (3, 4, 16)
    load_quality_prompts(result.export_dir, load_clip(clip_file, SMALL))
