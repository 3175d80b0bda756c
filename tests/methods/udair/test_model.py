"""UDAIR's network: parameter breakdown, features, adapters, episodic adaptation, codebook."""

from __future__ import annotations

import torch
from torch import nn

import aioir
from aioir.methods.udair import UDAIR, UDAIROutput


def _count_calls(modules: list[nn.Module]) -> list[int]:
    counter = [0]
    for m in modules:
        m.register_forward_hook(lambda *_: counter.__setitem__(0, counter[0] + 1))
    return counter


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
