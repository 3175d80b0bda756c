"""Model presets: parameter counts, forward/backward, UDAIR's features and adaptation hooks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import aioir
from aioir.methods.promptir import PromptIR
from aioir.methods.udair import UDAIR
from aioir.models import Restormer, list_models

TINY = ["restormer-tiny", "promptir-tiny", "udair-tiny"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [("restormer", 26_126_644), ("promptir", 35_592_263), ("udair", 11_237_760)],
)
def test_paper_preset_parameter_counts(name: str, expected: int) -> None:
    model = aioir.load_model(name)
    assert sum(p.numel() for p in model.parameters()) == expected


def test_declared_counts_match_every_preset() -> None:
    for info in list_models():
        if info.preset == "paper":
            continue  # built above
        n = sum(p.numel() for p in aioir.load_model(info.name).parameters())
        assert n == info.parameters, info.name
    tiny = [i for i in list_models() if i.preset == "tiny"]
    assert tiny and all(i.parameters <= 1_500_000 for i in tiny)
    # the U-Nets' tiny presets keep every level (a plain CNN has none to keep)
    assert all(i.parameters >= 300_000 for i in tiny if i.architecture != "residual-cnn")


@pytest.mark.parametrize("name", TINY)
def test_tiny_forward_odd_size(name: str) -> None:
    model = aioir.load_model(name)
    assert model.size_multiple == 8 and not model.training
    x = torch.rand(1, 3, 36, 52)
    with torch.no_grad():
        y = model(x)
    assert y.shape == x.shape and torch.isfinite(y).all()


@pytest.mark.parametrize("name", TINY)
def test_tiny_forward_backward(name: str) -> None:
    torch.manual_seed(0)
    model = aioir.load_model(name).train()
    x = torch.rand(2, 3, 32, 32)
    y = model(x)
    loss = (y - x).abs().mean()
    loss.backward()
    grads = [p.grad for p in model.patch_embed.parameters()] + [model.output.weight.grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_channels_last_input_gives_same_output() -> None:
    model = aioir.load_model("udair-tiny")
    x = torch.rand(1, 3, 32, 40)
    with torch.no_grad():
        a = model(x)
        b = model(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_subclasses_pass_the_backbone_sizes_through() -> None:
    sizes = {"dim": 8, "num_blocks": (1, 1, 1, 1), "num_refinement_blocks": 1,
             "heads": (1, 1, 2, 2), "ffn_expansion_factor": 2.0, "bias": True,
             "layernorm_type": "BiasFree"}  # fmt: skip
    plain = Restormer(**sizes)
    for model in (UDAIR(**sizes, vq_channel=16, embed_dim=8), PromptIR(**sizes)):
        assert model.backbone_options == {**plain.backbone_options}
        assert model.block_options == {
            "ffn_expansion_factor": 2.0, "bias": True, "layernorm_type": "BiasFree"
        }  # fmt: skip
        own, shared = model.state_dict(), ("patch_embed", "encoder_level", "refinement", "output")
        backbone = {k: v for k, v in plain.state_dict().items() if k.startswith(shared)}
        assert all(own[k].shape == v.shape for k, v in backbone.items())
    assert UDAIR().dim == 24 and PromptIR().dim == Restormer().dim == 48  # the defaults
    assert PromptIR(**sizes).reduce_chan_level3.in_channels == 8 * 2 + 8 * 4  # latent 4·dim
    with pytest.raises(TypeError, match="'inp_channels'"):
        UDAIR(inp_channels=1)  # RGB only, as before


def test_restormer_pluggable_fusion() -> None:
    calls: list[tuple[int, ...]] = []

    class Spy(nn.Module):
        def forward(self, x: torch.Tensor, ctx: object) -> torch.Tensor:
            calls.append(tuple(x.shape))
            return x * 0.5

    model = Restormer(dim=8, num_blocks=(1, 1, 1, 1), num_refinement_blocks=1,
                      fusions={"decoder_level3": Spy()})  # fmt: skip
    plain = Restormer(dim=8, num_blocks=(1, 1, 1, 1), num_refinement_blocks=1)
    plain.load_state_dict(model.state_dict())
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert not torch.allclose(model(x), plain(x))
    assert calls == [(1, 32, 4, 4)]
    with pytest.raises(ValueError):
        Restormer(fusions={"encoder": nn.Identity()})


@pytest.mark.slow
@pytest.mark.parametrize("name", ["restormer", "promptir", "udair"])
def test_paper_forward_odd_size(name: str) -> None:
    model = aioir.load_model(name)
    x = torch.rand(1, 3, 36, 52)
    with torch.no_grad():
        assert model(x).shape == x.shape
