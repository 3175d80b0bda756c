"""PromptIR's network: parity-only layers, the sparse-router variant."""

from __future__ import annotations

import torch

import aioir
from aioir.methods.promptir import PromptIR
from aioir.nn import TopKRouter


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
