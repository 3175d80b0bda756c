"""DINOv2 in the Dinov2Model key layout: shapes, loading from local files, class tokens."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from aioir.errors import CheckpointError
from aioir.nn.dinov2 import DINOV2_BASE, Dinov2Config, Dinov2Encoder, load_dinov2

SMALL = Dinov2Config(hidden_size=16, layers=4, heads=2, image_size=28)


def _random_file(path, config: Dinov2Config, prefix: str = "", seed: int = 0) -> None:
    """A random-initialised state dict with every key and shape of ``Dinov2Model(config)``."""
    g = torch.Generator().manual_seed(seed)
    shapes = {k: v.shape for k, v in Dinov2Encoder(config).state_dict().items()}
    save_file({prefix + k: torch.randn(s, generator=g) * 0.05 for k, s in shapes.items()}, path)


def test_base_layout_is_dinov2_base():
    state = Dinov2Encoder(DINOV2_BASE).state_dict()
    assert len(state) == 223
    assert sum(v.numel() for v in state.values()) == 86_580_480
    assert state["embeddings.position_embeddings"].shape == (1, 1370, 768)
    assert state["embeddings.patch_embeddings.projection.weight"].shape == (768, 3, 14, 14)
    assert state["encoder.layer.11.attention.attention.query.weight"].shape == (768, 768)
    assert state["encoder.layer.11.layer_scale2.lambda1"].shape == (768,)
    assert state["encoder.layer.0.mlp.fc1.weight"].shape == (3072, 768)


def test_loads_a_folder_with_prefixed_keys(tmp_path):
    folder = tmp_path / "dinov2-base"
    folder.mkdir()
    _random_file(folder / "model.safetensors", SMALL, prefix="dinov2.")
    model = load_dinov2(folder, SMALL)
    assert not any(p.requires_grad for p in model.parameters())
    tokens = model.class_tokens(torch.rand(2, 3, 40, 50), indices=(1, 2, 4))
    assert [t.shape for t in tokens] == [(2, 16)] * 3
    assert not model.train().training


def test_hidden_states_follow_the_blocks(tmp_path):
    path = tmp_path / "d.safetensors"
    _random_file(path, SMALL)
    model = load_dinov2(path, SMALL)
    x = torch.randn(1, 3, 28, 28)
    states = model.hidden_states(x)
    assert len(states) == SMALL.layers + 1
    assert torch.allclose(model.encoder.layer[0](states[0]), states[1])
    # at the native grid the position embeddings are used as they are
    pos = model.embeddings._positions(2, 2)
    assert torch.equal(pos, model.embeddings.position_embeddings)
    assert model.embeddings._positions(3, 5).shape == (1, 16, 16)


def test_missing_and_foreign_files_are_one_line(tmp_path):
    with pytest.raises(CheckpointError, match="DINOv2 weights not found"):
        load_dinov2(tmp_path / "nothing")
    other = tmp_path / "other.safetensors"
    save_file({"visual.conv1.weight": torch.zeros(2, 3, 1, 1)}, other)
    with pytest.raises(CheckpointError, match="not a DINOv2 state dict"):
        load_dinov2(other, SMALL)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match=r"no model\.safetensors"):
        load_dinov2(tmp_path / "empty")


@pytest.mark.slow
def test_a_full_size_random_file_loads(tmp_path):
    path = tmp_path / "model.safetensors"
    _random_file(path, DINOV2_BASE)
    model = load_dinov2(path)
    tokens = model.class_tokens(torch.rand(1, 3, 64, 48))
    assert [t.shape for t in tokens] == [(1, 768)] * 4
