"""PromptIR prompt blocks and the sparse (top-k) weighting strategy."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from aioir.nn import PromptGenBlock, PromptInteraction, SoftmaxRouter, TopKRouter


def _reference(block: PromptGenBlock, x: torch.Tensor) -> torch.Tensor:
    b, _, h, w = x.shape
    weights = F.softmax(block.linear_layer(x.mean(dim=(-2, -1))), dim=1)
    bank = block.prompt_param.repeat(b, 1, 1, 1, 1)  # B×N×C×S×S
    prompt = (weights[:, :, None, None, None] * bank).sum(1)
    return block.conv3x3(F.interpolate(prompt, (h, w), mode="bilinear"))


def test_prompt_gen_block_matches_dense_reference() -> None:
    torch.manual_seed(0)
    block = PromptGenBlock(prompt_dim=6, prompt_len=5, prompt_size=4, lin_dim=10)
    assert isinstance(block.router, SoftmaxRouter)
    assert block.prompt_param.min() >= 0 and block.prompt_param.max() <= 1  # U(0,1) init
    x = torch.randn(2, 10, 7, 9)
    torch.testing.assert_close(block(x), _reference(block, x), atol=1e-5, rtol=1e-5)


def test_topk_router_is_sparse_unnormalised_and_keeps_keys() -> None:
    logits = torch.tensor([[0.1, 2.0, -1.0, 0.5], [3.0, 0.0, 0.0, 2.9]])
    w = TopKRouter(1)(logits)
    probs = logits.softmax(-1)
    assert (w > 0).sum(-1).tolist() == [1, 1]
    torch.testing.assert_close(w.max(-1).values, probs.max(-1).values)
    w2 = TopKRouter(2)(logits)
    assert (w2 > 0).sum(-1).tolist() == [2, 2]
    dense = PromptGenBlock(4, 4, 3, 8)
    sparse = PromptGenBlock(4, 4, 3, 8, router=TopKRouter(1))
    assert set(dense.state_dict()) == set(sparse.state_dict())
    sparse.load_state_dict(dense.state_dict())
    x = torch.randn(1, 8, 5, 5)
    k = sparse.route(x).argmax(-1)
    onehot = F.one_hot(k, 4).float() * dense.route(x).max(-1, keepdim=True).values
    torch.testing.assert_close(sparse(x), dense(x, weights=onehot))


def test_prompt_interaction_shape() -> None:
    pim = PromptInteraction(dim=8, prompt_dim=4, out_dim=6, num_heads=4)
    assert pim(torch.randn(1, 8, 4, 4), torch.randn(1, 4, 4, 4)).shape == (1, 6, 4, 4)
