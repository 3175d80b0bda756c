"""CORAL: zero for identical statistics, positive otherwise, finite gradient at a perfect match."""

from __future__ import annotations

import pytest
import torch

from aioir.losses.coral import coral_distance, coral_loss, covariance, safe_sqrt


def test_zero_for_identical_statistics_positive_otherwise():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 6, generator=g)
    shuffled = x[torch.randperm(64, generator=g)] + 2.0  # same covariance, other mean and order
    assert coral_loss(x, shuffled).item() < 1e-6
    assert coral_loss(x, x).item() == 0.0
    y = x * torch.tensor([1.0, 2.0, 1.0, 1.0, 0.5, 1.0])
    assert coral_loss(x, y).item() > 0.0
    assert coral_loss(x, y, squared=True).item() > 0.0


def test_gradient_is_finite_at_a_perfect_match():
    x = torch.randn(32, 4, generator=torch.Generator().manual_seed(1))
    target = x.clone().requires_grad_(True)
    loss = coral_loss(x, target)
    loss.backward()
    assert loss.item() == 0.0
    assert torch.isfinite(target.grad).all()
    assert torch.equal(target.grad, torch.zeros_like(target.grad))
    # away from the match the gradient is the ordinary one
    moved = (x * 1.5).requires_grad_(True)
    coral_loss(x, moved).backward()
    assert torch.isfinite(moved.grad).all() and moved.grad.abs().sum() > 0


def test_safe_sqrt_matches_sqrt_and_has_zero_gradient_at_zero():
    v = torch.tensor([0.0, 4.0, 0.25], requires_grad=True)
    out = safe_sqrt(v)
    assert torch.equal(out.detach(), torch.tensor([0.0, 2.0, 0.5]))
    out.sum().backward()
    assert torch.allclose(v.grad, torch.tensor([0.0, 0.25, 1.0]))


def test_covariance_matches_torch_cov():
    x = torch.randn(50, 5, generator=torch.Generator().manual_seed(2))
    assert torch.allclose(covariance(x), torch.cov(x.t()), atol=1e-6)


def test_coral_distance_of_covariances_is_coral_loss():
    g = torch.Generator().manual_seed(3)
    a, b = torch.randn(20, 4, generator=g), torch.randn(15, 4, generator=g) * 2
    assert torch.allclose(coral_distance(covariance(a), covariance(b)), coral_loss(a, b))
    assert torch.allclose(
        coral_distance(covariance(a), covariance(b), squared=True), coral_loss(a, b, squared=True)
    )
    with pytest.raises(ValueError, match="C×C"):
        coral_distance(covariance(a), covariance(b)[:3])
