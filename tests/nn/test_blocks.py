"""Restormer building blocks: LayerNorm numerics, MDTA, GDFN, transformer block, resampling."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from aioir.nn import (
    GDFN,
    MDTA,
    BlockSequence,
    Downsample,
    FiLM,
    LayerNorm2d,
    OverlapPatchEmbed,
    TransformerBlock,
    Upsample,
    pad_to_multiple,
    unpad,
)


def _tokens(x: torch.Tensor) -> torch.Tensor:  # B×C×H×W -> B×HW×C, as the reference code does
    return x.flatten(2).transpose(1, 2)


@pytest.mark.parametrize("kind", ["WithBias", "BiasFree"])
def test_layernorm_matches_token_formula(kind: str) -> None:
    torch.manual_seed(0)
    ln = LayerNorm2d(12, kind)
    with torch.no_grad():
        ln.body.weight.uniform_(0.5, 1.5)
        if kind == "WithBias":
            ln.body.bias.uniform_(-1, 1)
    x = torch.randn(2, 12, 5, 7) * 3 + 1
    t = _tokens(x)
    var = t.var(-1, keepdim=True, unbiased=False)
    if kind == "WithBias":
        ref = (t - t.mean(-1, keepdim=True)) / torch.sqrt(
            var + 1e-5
        ) * ln.body.weight + ln.body.bias
    else:
        ref = t / torch.sqrt(var + 1e-5) * ln.body.weight
    ref = ref.transpose(1, 2).reshape_as(x)
    torch.testing.assert_close(ln(x), ref, atol=1e-5, rtol=1e-5)
    cl = ln(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(cl, ref, atol=1e-5, rtol=1e-5)
    keys = {"body.weight", "body.bias"} if kind == "WithBias" else {"body.weight"}
    assert set(ln.state_dict()) == keys


def test_layernorm_rejects_unknown_type() -> None:
    with pytest.raises(ValueError):
        LayerNorm2d(4, "Batch")


def test_mdta_matches_reference_computation() -> None:
    torch.manual_seed(0)
    dim, heads = 8, 2
    attn = MDTA(dim, heads)
    with torch.no_grad():
        attn.temperature.copy_(torch.tensor([0.5, 2.0]).view(2, 1, 1))
    x = torch.randn(2, dim, 6, 5)
    qkv = attn.qkv_dwconv(attn.qkv(x))
    q, k, v = qkv.chunk(3, dim=1)
    outs = []
    for h in range(heads):
        sl = slice(h * dim // heads, (h + 1) * dim // heads)
        qh = F.normalize(q[:, sl].flatten(2), dim=-1)
        kh = F.normalize(k[:, sl].flatten(2), dim=-1)
        a = torch.softmax(qh @ kh.transpose(1, 2) * attn.temperature[h], dim=-1)
        outs.append((a @ v[:, sl].flatten(2)).view(2, -1, 6, 5))
    ref = attn.project_out(torch.cat(outs, dim=1))
    torch.testing.assert_close(attn(x), ref, atol=1e-5, rtol=1e-5)


def test_gdfn_structure_and_output() -> None:
    ffn = GDFN(10, 2.66)
    hidden = int(10 * 2.66)
    assert ffn.project_in.out_channels == 2 * hidden
    assert ffn.project_out.in_channels == hidden
    x = torch.randn(1, 10, 4, 4)
    h = ffn.dwconv(ffn.project_in(x))
    ref = ffn.project_out(F.gelu(h[:, :hidden]) * h[:, hidden:])
    torch.testing.assert_close(ffn(x), ref)


@pytest.mark.parametrize(("c", "h"), [(48, 1), (96, 2), (384, 8), (704, 4)])
def test_transformer_block_parameter_formula(c: int, h: int) -> None:
    hp = int(2.66 * c)
    n = sum(p.numel() for p in TransformerBlock(c, h).parameters())
    assert n == 4 * c * c + 31 * c + h + 3 * c * hp + 18 * hp


def test_resampling_and_embed_shapes() -> None:
    x = torch.randn(1, 16, 8, 12)
    assert Downsample(16)(x).shape == (1, 32, 4, 6)
    assert Upsample(16)(x).shape == (1, 8, 16, 24)
    assert OverlapPatchEmbed(3, 16)(torch.randn(1, 3, 8, 12)).shape == (1, 16, 8, 12)


def test_guidance_enters_block_sequence() -> None:
    torch.manual_seed(0)
    film = FiLM(cond_dim=5, num_channels=8, zero_init=False)
    seq = BlockSequence(TransformerBlock(8, 2, guidance=film), TransformerBlock(8, 2))
    x, cond = torch.randn(2, 8, 4, 4), torch.randn(2, 5)
    plain = seq(x)
    guided = seq(x, cond)
    assert not torch.allclose(plain, guided)
    # same keys as an nn.Sequential of blocks, plus the guidance module's
    assert "0.norm1.body.weight" in seq.state_dict()
    assert "0.guidance.fc1.weight" in seq.state_dict()


def test_film_zero_init_is_identity() -> None:
    film = FiLM(4, 6)
    x = torch.randn(2, 6, 3, 3)
    torch.testing.assert_close(film(x, torch.randn(2, 4)), x)


@pytest.mark.parametrize(("h", "w"), [(36, 52), (32, 32), (3, 5)])
def test_pad_unpad_round_trip(h: int, w: int) -> None:
    x = torch.randn(1, 3, h, w)
    xp, size = pad_to_multiple(x, 8)
    assert xp.shape[-2] % 8 == 0 and xp.shape[-1] % 8 == 0
    torch.testing.assert_close(unpad(xp, size), x)
    if h > 8 and w > 8 and (h % 8 or w % 8):  # reflect: the first padded row mirrors row H-2
        torch.testing.assert_close(xp[..., h, :w], x[..., h - 2, :])
