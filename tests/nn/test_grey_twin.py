"""The black-and-white twin: colour images get the colour restorer exactly, grey ones the twin."""

from __future__ import annotations

import torch
from torch import nn

from aioir.nn.grey_twin import GREY_TOLERANCE, GreyTwin, is_grey


class Scale(nn.Module):
    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return x * self.factor


def _pair() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    colour = torch.rand(1, 3, 8, 9, generator=g)
    grey = torch.rand(1, 1, 8, 9, generator=g).expand(1, 3, 8, 9).clone()
    return colour, grey


def test_grey_means_equal_channels_within_half_a_level():
    colour, grey = _pair()
    assert is_grey(torch.cat([colour, grey])).tolist() == [False, True]
    nearly = grey.clone()
    nearly[0, 1, 2, 3] += 0.4 / 255  # 8- and 16-bit rounding of a grey file
    assert bool(is_grey(nearly)) and GREY_TOLERANCE == 0.5 / 255
    nearly[0, 1, 2, 3] += 0.2 / 255
    assert not bool(is_grey(nearly))
    assert bool(is_grey(torch.rand(1, 1, 4, 4)))


def test_each_image_goes_to_its_twin_and_only_the_needed_one_runs():
    colour, grey = _pair()
    twin = GreyTwin(Scale(2.0), Scale(3.0))
    assert torch.equal(twin(colour), colour * 2) and twin.grey.calls == 0
    assert torch.equal(twin(grey), grey * 3) and twin.colour.calls == 1
    mixed = twin(torch.cat([colour, grey]))
    assert torch.equal(mixed, torch.cat([colour * 2, grey * 3]))


def test_a_traced_twin_holds_both_branches():
    colour, grey = _pair()
    twin = GreyTwin(Scale(2.0), Scale(3.0))
    traced = torch.jit.trace(twin, colour)  # traced on a colour image...
    assert torch.equal(traced(grey), grey * 3)  # ...it still sends a grey one to its twin
    assert torch.equal(traced(colour), colour * 2)
