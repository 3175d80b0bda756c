"""Activation-free gates: SimpleGate halves the channels by a product, SCA is a linear channel
gate from the global mean."""

from __future__ import annotations

import pytest
import torch

from aioir.nn import SimpleGate, SimplifiedChannelAttention, SpatialGate


def test_simple_gate_multiplies_the_two_channel_halves() -> None:
    x = torch.arange(2 * 6 * 2 * 3, dtype=torch.float32).view(2, 6, 2, 3)
    y = SimpleGate()(x)
    assert y.shape == (2, 3, 2, 3)
    torch.testing.assert_close(y, x[:, :3] * x[:, 3:])


def test_simplified_channel_attention_scales_each_channel_by_a_linear_map_of_the_means() -> None:
    torch.manual_seed(0)
    sca = SimplifiedChannelAttention(4)
    x = torch.randn(2, 4, 5, 7)
    means = x.mean(dim=(2, 3))  # B×C
    scale = means @ sca.conv.weight.view(4, 4).T + sca.conv.bias  # no nonlinearity
    torch.testing.assert_close(sca(x), x * scale[:, :, None, None])
    assert sum(p.numel() for p in sca.parameters()) == 4 * 4 + 4
    assert SimplifiedChannelAttention(4, bias=False).conv.bias is None


def test_spatial_gate_starts_as_identity_and_gates_by_mean_and_max() -> None:
    torch.manual_seed(0)
    gate = SpatialGate(3)
    x = torch.randn(2, 5, 4, 4)
    torch.testing.assert_close(gate(x), x)
    with torch.no_grad():
        gate.conv.weight.normal_()
        gate.conv.bias.fill_(0.3)
    pooled = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], dim=1)
    logit = torch.nn.functional.conv2d(pooled, gate.conv.weight, gate.conv.bias, padding=1)
    torch.testing.assert_close(gate(x), x * 2 * torch.sigmoid(logit))
    assert sum(p.numel() for p in gate.parameters()) == 2 * 9 + 1
    with pytest.raises(ValueError, match="odd"):
        SpatialGate(4)
