"""NAFNet blocks: parameter count, identity at initialisation, the two residual halves."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from aioir.nn import LayerNorm2d, NAFBlock
from aioir.nn.naf import make_naf_blocks


@pytest.mark.parametrize("c", [4, 16, 24])
def test_parameter_count(c: int) -> None:
    assert sum(p.numel() for p in NAFBlock(c).parameters()) == 7 * c * c + 33 * c


def test_fresh_block_is_the_identity_and_learns_through_beta_and_gamma() -> None:
    torch.manual_seed(0)
    block = NAFBlock(8)
    x = torch.randn(2, 8, 9, 11)
    torch.testing.assert_close(block(x), x, rtol=0, atol=0)
    block(x).square().sum().backward()
    assert block.beta.grad is not None and block.beta.grad.abs().sum() > 0
    assert block.gamma.grad is not None and block.gamma.grad.abs().sum() > 0


def test_forward_matches_the_written_out_formula() -> None:
    torch.manual_seed(0)
    b = NAFBlock(6, dw_expand=2, ffn_expand=4)
    with torch.no_grad():
        b.beta.normal_()
        b.gamma.normal_()
    x = torch.randn(1, 6, 7, 5)

    def ln(m: LayerNorm2d, t: torch.Tensor) -> torch.Tensor:
        mu = t.mean(1, keepdim=True)
        var = t.var(1, keepdim=True, unbiased=False)
        w, bias = m.body.weight.view(1, -1, 1, 1), m.body.bias.view(1, -1, 1, 1)
        return (t - mu) / torch.sqrt(var + 1e-6) * w + bias

    h = b.conv2(b.conv1(ln(b.norm1, x)))
    h = h[:, :6] * h[:, 6:]
    h = h * b.sca.conv(F.adaptive_avg_pool2d(h, 1))
    y = x + b.conv3(h) * b.beta
    h = b.conv4(ln(b.norm2, y))
    h = h[:, :12] * h[:, 12:]
    ref = y + b.conv5(h) * b.gamma
    torch.testing.assert_close(b(x), ref, rtol=1e-5, atol=1e-5)


def test_layernorm_eps_passes_through_and_odd_widths_are_refused() -> None:
    assert LayerNorm2d(4, eps=1e-6).body.eps == 1e-6 and LayerNorm2d(4).body.eps == 1e-5
    assert NAFBlock(4).norm1.body.eps == 1e-6
    with pytest.raises(ValueError, match="even"):
        NAFBlock(3, ffn_expand=1)
    seq = make_naf_blocks(3, 4, bias=False)
    assert len(seq) == 3 and seq[0].conv1.bias is None
