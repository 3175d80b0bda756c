"""The NAFNet-block U-Net: presets, odd sizes, decoder depth, layout, fusion hooks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import aioir
from aioir.models import NAFNet
from aioir.nn import NAFBlock


def test_tiny_preset_odd_size_forward_and_backward() -> None:
    torch.manual_seed(0)
    model = aioir.load_model("nafnet-tiny")
    assert model.size_multiple == 8 and not model.training
    x = torch.rand(2, 3, 37, 29)
    with torch.no_grad():
        y = model(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    model.train()
    loss = (model(x) - x).abs().mean()
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_decoder_blocks_default_to_the_mirrored_encoder_and_can_be_lighter() -> None:
    mirrored = NAFNet(dim=8, num_blocks=(1, 2, 3, 4))
    assert [len(mirrored.decoder_level3), len(mirrored.decoder_level2),
            len(mirrored.decoder_level1)] == [3, 2, 1]  # fmt: skip
    assert mirrored.backbone_options["decoder_blocks"] == (3, 2, 1)
    light = NAFNet(dim=8, num_blocks=(1, 2, 3, 4), decoder_blocks=(1, 1, 1))
    assert len(light.decoder_level3) == 1 and isinstance(light.latent[3], NAFBlock)
    assert light.feature_channels == 8 and light.up4_3[0].in_channels == 64
    with pytest.raises(ValueError):
        NAFNet(num_blocks=(1, 1, 1))
    with pytest.raises(ValueError):
        NAFNet(decoder_blocks=(1, 1))


def test_skips_are_added_and_every_convolution_has_a_bias() -> None:
    model = NAFNet(dim=8, num_blocks=(1, 1, 1, 1))
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    upsampling = {id(model.up4_3[0]), id(model.up3_2[0]), id(model.up2_1[0])}
    assert all(c.bias is not None for c in convs if id(c) not in upsampling)
    assert model.decoder_level1[0].conv1.in_channels == 8  # added, not concatenated
    no_bias = NAFNet(dim=8, num_blocks=(1, 1, 1, 1), bias=False)
    assert no_bias.latent[0].conv1.bias is None and no_bias.block_options["bias"] is False


def test_fusion_hooks_change_the_output() -> None:
    class Half(nn.Module):
        def forward(self, x: torch.Tensor, ctx: object) -> torch.Tensor:
            return x * 0.5

    torch.manual_seed(0)
    plain = NAFNet(dim=8, num_blocks=(1, 1, 1, 1))
    with torch.no_grad():  # blocks that are not identities, so a fusion shows in the output
        for name, p in plain.named_parameters():
            if name.endswith(("beta", "gamma")):
                p.normal_()
    fused = NAFNet(dim=8, num_blocks=(1, 1, 1, 1), fusions={"latent": Half()})
    fused.load_state_dict(plain.state_dict())
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert not torch.allclose(plain(x), fused(x))
