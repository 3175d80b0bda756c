"""Model presets: parameter counts, forward/backward, UDAIR's features and adaptation hooks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import aioir
from aioir.methods.promptir import PromptIR
from aioir.methods.udair import UDAIR, UDAIROutput
from aioir.models import Restormer, list_models
from aioir.nn import TopKRouter

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
    assert tiny and all(300_000 <= i.parameters <= 1_500_000 for i in tiny)


def test_udair_paper_breakdown_and_plain_forward_parameters() -> None:
    torch.manual_seed(0)
    model = UDAIR()
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert (
        count(model.distrib_adapt2) + count(model.distrib_adapt3) + count(model.distrib_adapt4)
        == 298_872
    )
    vq = model.dam.codebook
    assert count(vq.upsample_t) + count(vq.dec) + count(vq.out_conv) == 484_515
    # parameters reached by a plain (adapter-free) forward: spec counts the logit scale as used
    model.train()
    out = model.forward_features(torch.rand(1, 3, 16, 16))
    (out.image.sum() + out.logit_scale).backward()
    used = sum(p.numel() for p in model.parameters() if p.grad is not None)
    assert used == 10_454_373
    assert all(p.grad is None for p in model.adapter_parameters())
    assert vq.out_conv.weight.grad is None and vq.dec.blocks[0].weight.grad is None


def test_promptir_unused_layers_are_only_for_parity() -> None:
    torch.manual_seed(0)
    model = aioir.load_model("promptir-tiny", parity_layers=True, dim=16)
    assert hasattr(model, "chnl_reduce3")
    model.train()
    model(torch.rand(1, 3, 16, 16)).sum().backward()
    unused = [n for n, p in model.named_parameters() if p.grad is None]
    assert sorted({n.split(".")[0] for n in unused}) == [
        "chnl_reduce1", "chnl_reduce2", "chnl_reduce3",
        "reduce_noise_channel_1", "reduce_noise_channel_2", "reduce_noise_channel_3",
    ]  # fmt: skip


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


def test_promptir_sparse_router_variant_keeps_keys() -> None:
    dense = aioir.load_model("promptir-tiny")
    sparse = aioir.load_model("promptir-tiny", router=lambda: TopKRouter(1))
    assert isinstance(sparse, PromptIR) and isinstance(sparse.prompt1.router, TopKRouter)
    sparse.load_state_dict(dense.state_dict())
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        weights = {"latent": torch.tensor([[1.0, 0, 0, 0, 0]])}
        y = dense.forward_with_prompt_weights(x, weights)
        assert y.shape == x.shape and not torch.allclose(y, dense(x))


# ----------------------------------------------------------------------------- UDAIR


def test_udair_forward_features_shapes() -> None:
    model = aioir.load_model("udair-tiny")
    dim = model.dim
    x = torch.rand(2, 3, 36, 52)
    with torch.no_grad():
        out = model.forward_features(x)  # padded to 40×56
    assert isinstance(out, UDAIROutput)
    assert out.image.shape == (2, 3, 36, 52)
    assert out.feature.shape == (2, 4 * dim * 256)
    assert out.g4.shape == (2, 8 * dim, 5, 7)
    assert out.g3.shape == out.embedding.shape == (2, 4 * dim, 10, 14)
    assert out.g2.shape == (2, 2 * dim, 20, 28)
    assert out.codes.shape == (2, 10, 14)
    torch.testing.assert_close(out.logit_scale, torch.tensor(1 / 0.07))
    with torch.no_grad():
        torch.testing.assert_close(out.image, model(x))
        lean = model.forward_features(torch.rand(1, 3, 32, 32), decode=False)
    assert lean.image is None


def _count_calls(modules: list[nn.Module]) -> list[int]:
    counter = [0]
    for m in modules:
        m.register_forward_hook(lambda *_: counter.__setitem__(0, counter[0] + 1))
    return counter


def test_udair_plain_forward_skips_adapters_and_vq_decoder() -> None:
    model = aioir.load_model("udair-tiny")
    vq = model.dam.codebook
    adapters = _count_calls(list(model.adapters().values()))
    decoder = _count_calls([vq.dec, vq.upsample_t, vq.out_conv])
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        plain = model(x)
        assert adapters[0] == 0 and decoder[0] == 0
        model.set_adapters(True)
        adapted = model(x)
        assert adapters[0] == 3 and decoder[0] == 0
    assert not torch.allclose(plain, adapted)  # reference adapters: random init, no residual
    model.set_adapters(False)
    with torch.no_grad():
        torch.testing.assert_close(model(x), plain)


def test_udair_identity_adapters_option() -> None:
    model = aioir.load_model("udair-tiny", adapter_residual=True, adapter_zero_init=True)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        plain = model(x)
        adapted = model.set_adapters(True)(x)
    torch.testing.assert_close(plain, adapted)


def test_udair_adaptation_step_and_episodic_reset() -> None:
    torch.manual_seed(0)
    model = aioir.load_model("udair-tiny").train()
    for p in model.parameters():
        p.requires_grad_(False)
    params = list(model.adapter_parameters())
    for p in params:
        p.requires_grad_(True)
    snapshot = model.adaptation_state()
    assert any(k.endswith("quantize_b.embed") for k in snapshot)
    assert any(k.startswith("distrib_adapt4.") for k in snapshot)
    model.set_adapters(True)
    opt = torch.optim.AdamW(params, lr=1e-2)
    x = torch.rand(1, 3, 32, 32)
    out = model.forward_features(x)
    loss = sum(g.pow(2).mean() for g in (out.g4, out.g3, out.g2))
    loss.backward()
    assert all(p.grad is not None for p in params)
    assert out.image is not None and not out.image.requires_grad  # decoder sees detached g's
    opt.step()
    changed = model.adaptation_state()
    assert not torch.equal(
        changed["distrib_adapt4.adapt.0.weight"], snapshot["distrib_adapt4.adapt.0.weight"]
    )
    assert not torch.equal(
        changed["dam.codebook.quantize_b.embed"], snapshot["dam.codebook.quantize_b.embed"]
    )
    param_ids = [id(p) for p in params]
    model.load_adaptation_state(snapshot)
    for key, value in model.adaptation_state().items():
        assert torch.equal(value, snapshot[key]), key
    assert [id(p) for p in model.adapter_parameters()] == param_ids


def test_udair_codebook_frozen_in_eval() -> None:
    model = aioir.load_model("udair-tiny")
    before = model.adaptation_state()
    with torch.no_grad():
        model(torch.rand(1, 3, 32, 32))
    after = model.adaptation_state()
    assert all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["restormer", "promptir", "udair"])
def test_paper_forward_odd_size(name: str) -> None:
    model = aioir.load_model(name)
    x = torch.rand(1, 3, 36, 52)
    with torch.no_grad():
        assert model(x).shape == x.shape
