"""Perceive-IR's restorer: presets, the authors' key layout and outputs, semantics, tiling."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import aioir
from aioir.errors import CheckpointError, ConfigError
from aioir.methods.perceive_ir import PerceiveIR
from aioir.methods.perceive_ir.model import DINOV2_ENV, authors_key
from aioir.models import get_model_info
from aioir.nn.dinov2 import Dinov2Config, Dinov2Encoder
from aioir.nn.image_statistics import recording, replaying

DATA = Path(__file__).parent / "data"
#: the configuration of the authors' model that produced authors_tiny_io.safetensors
TINY_AUTHORS = {
    "dim": 8, "blocks": (1, 1, 1, 1), "heads": (1, 1, 2, 2), "refinement_blocks": 1,
    "semantic_dim": 16,
}  # fmt: skip


def _keys(name: str) -> list[tuple[str, tuple[int, ...]]]:
    rows = []
    for line in (DATA / name).read_text().splitlines():
        if line and not line.startswith("#"):
            key, *shape = line.split()
            rows.append((key, tuple(int(s) for s in shape)))
    return rows


def _authors_weights(seed: int = 0) -> dict[str, torch.Tensor]:
    """The weights the fixture was made with: random, in the authors' key order."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for key, shape in _keys("authors_tiny_keys.txt"):
        value = torch.randn(shape, generator=g) * 0.05
        if key.endswith(".body.weight") or key.endswith("temperature"):
            value = value + 1.0
        out[key] = value
    return out


@pytest.mark.parametrize(
    "name", ["perceive-ir", "perceive-ir-small", "perceive-ir-tiny", "perceive-ir-lite-tiny"]
)
def test_declared_parameter_counts(name):
    model = aioir.load_model(name)
    assert sum(p.numel() for p in model.parameters()) == get_model_info(name).parameters


def test_paper_preset_has_the_authors_keys_and_shapes():
    authors = _keys("authors_paper_keys.txt")
    ours = {k: tuple(v.shape) for k, v in aioir.load_model("perceive-ir").state_dict().items()}
    renamed = {authors_key(k): s for k, s in authors}
    assert len(renamed) == len(authors) == len(ours)
    assert renamed == ours
    # a spot set, by the authors' names
    spot = dict(authors)
    assert spot["pgm.3.affine.0.weight"] == (768, 896)
    assert spot["latent.blocks.7.attention.kv.1.weight"] == (768, 1, 3, 3)
    assert spot["decoder1.blocks.3.mdta.qkv_dw.weight"] == (144, 1, 3, 3)
    assert spot["reduce1.weight"] == (48, 96, 1, 1)
    assert spot["cfe.projection.weight"] == (128, 128)


def test_our_keys_pass_the_renaming_unchanged():
    for key in aioir.load_model("perceive-ir-tiny").state_dict():
        assert authors_key(key) == key


def test_outputs_equal_the_authors_code(tmp_path):
    """The fixture holds the authors' PerceiveIR outputs for these weights (see the docs)."""
    io = load_file(str(DATA / "authors_tiny_io.safetensors"))
    path = tmp_path / "perceiveIR_000010.pth"
    torch.save({"model": _authors_weights(), "iteration": 10}, path)
    model = aioir.load_model("perceive-ir", checkpoint=path, **TINY_AUTHORS)
    semantics = [io[f"semantic.{i}"] for i in range(4)]
    with torch.no_grad():
        out = model.forward_padded(io["input"], semantic_vectors=semantics)
        code = model.degradation_code(io["input"])
    assert (out - io["output"]).abs().max() < 1e-5
    assert (code - io["code"]).abs().max() < 1e-6


def test_a_mismatched_checkpoint_is_one_line(tmp_path):
    path = tmp_path / "bad.pth"
    state = _authors_weights()
    del state["reduce1.weight"]
    torch.save({"model": state}, path)
    with pytest.raises(CheckpointError, match=r"missing keys: reduce1\.weight"):
        aioir.load_model("perceive-ir", checkpoint=path, **TINY_AUTHORS)


def test_lite_round_trips_odd_sizes_and_trains():
    torch.manual_seed(0)
    model = aioir.load_model("perceive-ir-lite-tiny").train()
    x = torch.rand(2, 3, 19, 23)
    out = model.forward_features(x)
    assert out.image.shape == x.shape
    assert out.feature.shape == (2, 128) and out.positive is not None
    assert torch.allclose(out.feature.norm(dim=-1), torch.ones(2), atol=1e-5)
    out.image.mean().backward()
    assert all(p.grad is not None for n, p in model.named_parameters() if n.startswith("pgm"))


def test_missing_dinov2_names_the_option(monkeypatch):
    monkeypatch.delenv(DINOV2_ENV, raising=False)
    model = aioir.load_model("perceive-ir-tiny")
    with pytest.raises(ConfigError, match="dinov2=PATH"):
        model(torch.rand(1, 3, 16, 16))
    model = aioir.load_model("perceive-ir-tiny", dinov2="/nonexistent/dinov2")
    with pytest.raises(CheckpointError, match="DINOv2 weights not found"):
        model(torch.rand(1, 3, 16, 16))


def _small_dinov2() -> Dinov2Encoder:
    torch.manual_seed(0)
    enc = Dinov2Encoder(Dinov2Config(hidden_size=16, layers=12, heads=2, image_size=56), 28)
    for p in enc.parameters():
        p.data.normal_(0, 0.1)
    return enc


def test_dinov2_semantics_reach_every_level():
    torch.manual_seed(0)
    model = aioir.load_model("perceive-ir-tiny", semantic_dim=16)
    model.set_semantic_encoder(_small_dinov2())
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        y = model(x)
        vectors = model._dinov2_vectors(x)
        shifted = model.forward_padded(x, semantic_vectors=[v + 1 for v in vectors])
    assert torch.allclose(y, model.forward_padded(x, semantic_vectors=vectors))
    assert not torch.allclose(y, shifted)


def test_tiles_replay_the_whole_images_guidance():
    torch.manual_seed(0)
    model = aioir.load_model("perceive-ir-lite-tiny").eval()
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad(), recording() as stats:
        model.forward_padded(x)
        with replaying(stats):
            tile = model.forward_padded(x[..., :16, :16])
        plain_tile = model.forward_padded(x[..., :16, :16])
    code_whole = model.degradation_code(x)
    with replaying(stats):
        code_tile = model.degradation_code(x[..., :16, :16])
    assert torch.allclose(code_whole, code_tile)
    assert not torch.allclose(tile, plain_tile)


def test_model_class_is_registered_for_both_names():
    assert isinstance(aioir.load_model("perceive-ir-tiny"), PerceiveIR)
    assert aioir.load_model("perceive-ir-lite-tiny").semantics == "self"


def test_without_the_degradation_code():
    model = aioir.load_model("perceive-ir-lite-tiny", code_dim=0).train()
    assert model.cfe is None
    out = model.forward_features(torch.rand(2, 3, 16, 16))
    assert out.feature is None and out.positive is None and out.image.shape == (2, 3, 16, 16)
    with pytest.raises(ValueError, match="semantic signal"):
        PerceiveIR(semantics="none", code_dim=0)
