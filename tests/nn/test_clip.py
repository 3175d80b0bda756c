"""OpenAI CLIP in the openai/clip key layout; the token ids prompt learning needs."""

from __future__ import annotations

import gzip

import pytest
import torch

from aioir.errors import CheckpointError
from aioir.nn.clip import CLIP, VIT_B_32, ClipConfig, load_clip
from aioir.nn.clip_tokens import (
    END_OF_TEXT,
    START_OF_TEXT,
    bytes_to_unicode,
    placeholder_tokens,
    word_token_id,
)

SMALL = ClipConfig(
    embed_dim=8, image_resolution=32, vision_width=64, vision_layers=2, vision_patch_size=16,
    context_length=12, vocab_size=50000, text_width=16, text_heads=2, text_layers=2,
)  # fmt: skip


def random_clip_file(path, config: ClipConfig = SMALL, seed: int = 0) -> None:
    """A random-initialised file of the released layout (fp16, with the non-weight entries)."""
    g = torch.Generator().manual_seed(seed)
    state = {
        k: (torch.randn(v.shape, generator=g) * 0.05).half()
        for k, v in CLIP(config).state_dict().items()
    }
    state["input_resolution"] = torch.tensor(config.image_resolution)
    state["context_length"] = torch.tensor(config.context_length)
    state["vocab_size"] = torch.tensor(config.vocab_size)
    torch.save(state, path)


def test_vit_b_32_layout():
    state = CLIP(VIT_B_32).state_dict()
    assert sum(v.numel() for v in state.values()) == 151_277_313
    assert state["visual.conv1.weight"].shape == (768, 3, 32, 32)
    assert state["visual.positional_embedding"].shape == (50, 768)
    assert state["visual.transformer.resblocks.11.attn.in_proj_weight"].shape == (2304, 768)
    assert state["visual.proj"].shape == (768, 512)
    assert state["transformer.resblocks.0.mlp.c_fc.weight"].shape == (2048, 512)
    assert state["token_embedding.weight"].shape == (49408, 512)
    assert state["text_projection"].shape == (512, 512)
    assert state["logit_scale"].shape == ()


def test_loads_a_state_dict_file_and_encodes(tmp_path):
    random_clip_file(tmp_path / "clip.pt")
    clip = load_clip(tmp_path / "clip.pt", SMALL)
    assert clip.logit_scale.dtype == torch.float32
    assert not any(p.requires_grad for p in clip.parameters())
    assert clip.encode_image(torch.rand(2, 3, 40, 24)).shape == (2, 8)
    tokens = placeholder_tokens(3, 2, SMALL.context_length)
    tokens[1, 1] = 7
    feats = clip.encode_text(tokens)
    assert feats.shape == (2, 8) and not torch.allclose(feats[0], feats[1])
    # causal: tokens after the end of text do not change its feature
    later = tokens.clone()
    later[:, 6] = 5
    assert torch.allclose(clip.encode_text(later), feats, atol=1e-6)


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
def test_loads_a_torchscript_archive(tmp_path):
    random_clip_file(tmp_path / "clip.pt")
    clip = load_clip(tmp_path / "clip.pt", SMALL)
    traced = torch.jit.trace_module(clip, {"encode_image": torch.rand(1, 3, 32, 32)})
    traced.save(str(tmp_path / "archive.pt"))
    again = load_clip(tmp_path / "archive.pt", SMALL)
    x = torch.rand(1, 3, 32, 32)
    assert torch.allclose(again.encode_image(x), clip.encode_image(x))


def test_missing_and_foreign_files_are_one_line(tmp_path):
    with pytest.raises(CheckpointError, match="CLIP weights file not found"):
        load_clip(tmp_path / "ViT-B-32.pt")
    torch.save({"features.0.weight": torch.zeros(1)}, tmp_path / "vgg.pth")
    with pytest.raises(CheckpointError, match="not an OpenAI CLIP state dict"):
        load_clip(tmp_path / "vgg.pth", SMALL)


def test_token_ids_from_the_merges_file(tmp_path):
    assert len(bytes_to_unicode()) == 256
    assert bytes_to_unicode()[ord("x")] == "x"
    vocab = tmp_path / "bpe_simple_vocab_16e6.txt.gz"
    with gzip.open(vocab, "wt", encoding="utf-8") as f:
        f.write("#version: 0.2\nt e\nexcell ent</w>\nmedi ocre</w>\n")
    assert word_token_id(vocab, "Excellent") == 512 + 1
    assert word_token_id(vocab, "mediocre") == 512 + 2
    assert word_token_id(vocab, "x") == 256 + 87  # a single character with the word end
    with pytest.raises(ValueError, match="not a single CLIP token"):
        word_token_id(vocab, "terrible")
    with pytest.raises(CheckpointError, match="vocabulary file"):
        word_token_id(tmp_path / "none.txt.gz", "excellent")
    tokens = placeholder_tokens(16, 3)
    assert tokens.shape == (3, 77) and (tokens.argmax(-1) == 17).all()
    assert tokens[0, 0] == START_OF_TEXT and tokens[0, 17] == END_OF_TEXT
