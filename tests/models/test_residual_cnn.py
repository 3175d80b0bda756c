"""The plain residual CNN: identity at initialisation, any size, learns, saved and reloaded."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import aioir
from aioir.models import ResidualCNN
from helpers import assert_reloads_by_name


def test_untrained_network_is_the_identity_on_any_size() -> None:
    torch.manual_seed(0)
    model = aioir.load_model("residual-cnn-tiny")
    x = torch.rand(2, 3, 13, 21)
    with torch.no_grad():
        assert torch.equal(model(x), x)


def test_without_zero_init_it_changes_the_input_and_depth_is_counted_in_convolutions() -> None:
    torch.manual_seed(0)
    model = ResidualCNN(width=4, depth=3, zero_init_output=False)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 3 and convs[1].in_channels == 4
    x = torch.rand(1, 3, 8, 8)
    assert not torch.allclose(model(x), x)
    with pytest.raises(ValueError):
        ResidualCNN(depth=1)


def test_a_few_steps_reduce_a_denoising_loss() -> None:
    torch.manual_seed(0)
    model = ResidualCNN(width=8, depth=3)
    clean = torch.rand(8, 3, 16, 16).mul(0.5).add(0.25)
    noisy = clean + 0.1 * torch.randn_like(clean)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = last = 0.0
    for step in range(60):
        loss = (model(noisy) - clean).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        first, last = (loss.item() if step == 0 else first), loss.item()
    assert last < 0.8 * first  # the noisy input itself scores ≈ 0.01


def test_saved_and_reloaded_by_name(tmp_path: Path) -> None:
    assert_reloads_by_name("residual-cnn-tiny", tmp_path / "m")


def test_the_signal_reaches_the_output_layer_of_the_untrained_network() -> None:
    # with PyTorch's default initialisation the last hidden features vary by ≈ 0.016 and a zero
    # output layer got no gradient through to the body: nothing was learnt in 2,000 steps
    torch.manual_seed(0)
    model = ResidualCNN(width=48, depth=10)
    features = model.body[:-1](torch.rand(2, 3, 32, 32))
    assert features.std() > 0.05
