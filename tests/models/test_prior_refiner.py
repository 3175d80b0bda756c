"""The prior refiner: the prior exactly when untrained, learns a correction of it, saved and
reloaded, refuses a prior with weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import aioir
from aioir.models import DarkChannelPrior, PriorRefiner
from helpers import assert_reloads_by_name


def _hazy(seed: int, size: int = 24) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    clean = torch.rand(4, 3, size, size, generator=generator).mul(0.6)
    transmission = torch.linspace(0.4, 0.9, size).view(1, 1, 1, size)
    return clean, clean * transmission + 0.9 * (1 - transmission)


def test_untrained_model_returns_the_prior_exactly_on_any_size() -> None:
    torch.manual_seed(0)
    model = aioir.load_model("prior-refiner-dcp-tiny")
    x = torch.rand(2, 3, 13, 21)
    with torch.no_grad():
        assert torch.equal(model(x), DarkChannelPrior()(x))


def test_only_the_correction_has_weights_and_a_prior_with_weights_is_refused() -> None:
    model = PriorRefiner(width=4, depth=3)
    assert all(k.startswith("refiner.") for k in model.state_dict())
    first = model.refiner[0]
    assert isinstance(first, torch.nn.Conv2d) and first.in_channels == 6
    with pytest.raises(ValueError, match="trainable parameters"):
        PriorRefiner(prior="residual-cnn-tiny")


def test_a_few_steps_improve_on_the_prior() -> None:
    torch.manual_seed(0)
    model = PriorRefiner(width=8, depth=3)
    clean, hazy = _hazy(0)
    optimizer = torch.optim.Adam(model.refiner.parameters(), lr=1e-2)
    with torch.no_grad():
        prior_loss = (model.prior(hazy) - clean).abs().mean().item()
    for _ in range(60):
        loss = (model(hazy) - clean).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    test_clean, test_hazy = _hazy(1)
    with torch.no_grad():
        refined = (model(test_hazy) - test_clean).abs().mean().item()
        prior_test = (model.prior(test_hazy) - test_clean).abs().mean().item()
    assert loss.item() < 0.8 * prior_loss and refined < 0.8 * prior_test


def test_saved_and_reloaded_by_name(tmp_path: Path) -> None:
    assert_reloads_by_name("prior-refiner-dcp-tiny", tmp_path / "m")
