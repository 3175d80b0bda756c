"""UDAIR's cross-sample contrastive loss: against a hand computation, its variants, the
permutations, and the ``cscl`` loss term."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from aioir.errors import ConfigError
from aioir.methods.udair.losses import cscl_loss, random_derangement, task_group_permutation


def _hand_cscl(f: np.ndarray, s: float, t: int, m: int, perm: np.ndarray, normalize: bool):
    a = np.stack([np.concatenate([f[i * m + j] for j in range(m)]) for i in range(t)])
    b = np.stack([np.concatenate([f[i * m + perm[i, j]] for j in range(m)]) for i in range(t)])
    if normalize:
        a = a / np.linalg.norm(a, axis=1, keepdims=True)
        b = b / np.linalg.norm(b, axis=1, keepdims=True)
        s = min(s, 100.0)
    logits = s * a @ b.T

    def ce(z):
        z = z - z.max(1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(1, keepdims=True))
        return -np.mean(np.diag(logp))

    return 0.5 * (ce(logits) + ce(logits.T)), logits


@pytest.mark.parametrize("mode", ["faithful", "normalized"])
def test_cscl_equals_hand_computation(mode):
    g = torch.Generator().manual_seed(0)
    t, m, d = 3, 2, 4
    f = torch.randn(t * m, d, generator=g, dtype=torch.float64) * 0.3
    perm = torch.tensor([[1, 0], [0, 1], [1, 0]])
    s = torch.tensor(math.exp(0.5), dtype=torch.float64)
    out = cscl_loss(f, s, t, m, mode=mode, permutation=perm)
    ref, ref_logits = _hand_cscl(f.numpy(), float(s), t, m, perm.numpy(), mode == "normalized")
    assert out.loss.item() == pytest.approx(ref, rel=1e-10)
    np.testing.assert_allclose(out.logits.numpy(), ref_logits, rtol=1e-10)


def test_cscl_faithful_is_unnormalised_and_unclamped():
    # scaling the features by 10 scales the faithful logits by 100 (no normalisation) and a
    # scale of 1000 is applied as is (no clamp)
    f = torch.randn(4, 5, generator=torch.Generator().manual_seed(1))
    perm = torch.tensor([[0, 1], [1, 0]])
    one = cscl_loss(f, torch.tensor(1000.0), 2, 2, permutation=perm)
    ten = cscl_loss(10 * f, torch.tensor(1000.0), 2, 2, permutation=perm)
    torch.testing.assert_close(ten.logits, 100 * one.logits, rtol=1e-5, atol=1e-5)
    assert one.scale.item() == 1000.0


def test_cscl_normalized_is_bounded():
    f = 1e4 * torch.randn(10, 64, generator=torch.Generator().manual_seed(2))
    out = cscl_loss(f, torch.tensor(1e6), 5, 2, mode="normalized", positives="derangement")
    assert out.scale.item() == 100.0
    assert out.logits.abs().max().item() <= 100.0 + 1e-4
    assert out.loss.item() <= 200.0 + math.log(5)
    assert torch.isfinite(out.loss)


def test_permutation_structure():
    g = torch.Generator().manual_seed(3)
    perms = task_group_permutation(5, 4, "permutation", g)
    assert perms.shape == (5, 4)
    for row in perms:
        assert sorted(row.tolist()) == [0, 1, 2, 3]
    # with M = 2 a plain permutation is the identity about half of the time
    ident = sum(
        bool((task_group_permutation(1, 2, "permutation", g)[0] == torch.arange(2)).all())
        for _ in range(400)
    )
    assert 150 < ident < 250
    for _ in range(50):
        d = random_derangement(3, g)
        assert sorted(d.tolist()) == [0, 1, 2] and not bool((d == torch.arange(3)).any())
    assert random_derangement(2, g).tolist() == [1, 0]
    with pytest.raises(ConfigError):
        random_derangement(1)


def test_cscl_positives_come_from_the_same_task():
    # b_t must hold only task t's samples: with identical features inside each task group and
    # orthogonal groups, the logits are diagonal whatever permutation is drawn
    f = torch.zeros(6, 3)
    for t in range(3):
        f[2 * t : 2 * t + 2, t] = 1.0
    out = cscl_loss(f, torch.tensor(1.0), 3, 2)
    assert torch.equal(out.logits, torch.diag(torch.full((3,), 2.0)))


def test_cscl_gradient_reaches_features_and_scale():
    f = (0.1 * torch.randn(6, 8, generator=torch.Generator().manual_seed(5))).requires_grad_()
    theta = torch.tensor(math.log(1 / 0.07), requires_grad=True)
    cscl_loss(f, theta.exp(), 3, 2).loss.backward()
    assert f.grad is not None and theta.grad is not None and f.grad.abs().sum() > 0


def test_cscl_is_a_configurable_loss_term_once_the_methods_load():
    from aioir.losses import CompositeLoss, LossInputs

    loss = CompositeLoss({"l1": 1.0, "cscl": {"weight": 0.5, "mode": "normalized"}})
    assert loss.needs_features
    g = torch.Generator().manual_seed(0)
    pred, target = torch.rand(4, 3, 8, 8, generator=g), torch.rand(4, 3, 8, 8, generator=g)
    features = torch.randn(4, 6, generator=g)
    total, logs = loss(LossInputs(pred, target, features, torch.tensor(10.0), 2, 2))
    assert {"l1", "cscl", "cscl_scale"} <= set(logs)
    assert torch.isfinite(total)
