"""Guided transformer blocks: cross-attention from the guidance map, its residual, tiles."""

from __future__ import annotations

import torch

from aioir.nn.guided_attention import (
    GuidedBlockSequence,
    GuidedChannelAttention,
    GuidedTransformerBlock,
)
from aioir.nn.image_statistics import recording, replaying


def test_cross_attention_by_hand():
    torch.manual_seed(0)
    att = GuidedChannelAttention(4, 2)
    x, y = torch.randn(1, 4, 3, 5), torch.randn(1, 4, 3, 5)
    q = att.q(y).reshape(1, 2, 2, 15)
    k, v = att.kv(x).reshape(1, 2, 2, 2, 15).unbind(1)
    qn, kn = q / q.norm(dim=-1, keepdim=True), k / k.norm(dim=-1, keepdim=True)
    a = (qn @ kn.transpose(-2, -1) * att.temperature).softmax(-1)
    expected = att.project((a @ v).reshape(1, 4, 3, 5))
    assert torch.allclose(att(x, y), expected, atol=1e-6)


def test_block_residual_base_is_the_guidance_map():
    torch.manual_seed(0)
    block = GuidedTransformerBlock(8, 2)
    for m in (block.mdta.project_out, block.ffn.project_out):
        torch.nn.init.zeros_(m.weight)
        torch.nn.init.zeros_(m.bias)
    x, y = torch.randn(1, 8, 4, 4), torch.randn(1, 8, 4, 4)
    assert torch.allclose(block(x, y), y)


def test_sequence_keys_and_tiles():
    torch.manual_seed(0)
    seq = GuidedBlockSequence(8, 2, depth=2)
    assert "blocks.1.attention.kv.1.weight" in seq.state_dict()
    x, y = torch.randn(1, 8, 16, 16), torch.randn(1, 8, 16, 16)
    with torch.no_grad(), recording() as stats:
        seq(x, y)
    with torch.no_grad(), replaying(stats):
        tile = seq(x[..., :8, :8], y[..., :8, :8])
    assert len(stats) == 4  # cross-attention and MDTA of two blocks
    assert tile.shape == (1, 8, 8, 8)
