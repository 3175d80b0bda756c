"""Geometric self-ensemble: the average over flips (and rotations) mapped back."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from aioir.geometry import apply_d8, invert_d8
from aioir.nn.ensemble import ENSEMBLE_MODES, GeometricEnsemble, self_ensemble


def test_equivariant_forward_is_unchanged_and_others_are_averaged():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 6, 7, generator=g)
    assert torch.allclose(self_ensemble(lambda t: t * 2, x), x * 2)

    # a shift to the right is not equivariant: the mean of its 8 conjugates, by hand
    def shift(t: torch.Tensor) -> torch.Tensor:
        return torch.roll(t, 1, dims=-1)

    expected = sum(invert_d8(shift(apply_d8(x, i)), i) for i in range(8)) / 8
    out = self_ensemble(shift, x)
    assert torch.allclose(out, expected)
    assert not torch.allclose(out, shift(x))
    with pytest.raises(ValueError, match="mode"):
        self_ensemble(shift, x, "rotations")


def test_flips_keep_the_axes_so_oriented_structure_stays_oriented():
    x = torch.zeros(1, 1, 6, 8)
    x[..., :, 3] = 1.0  # a vertical streak
    for i in ENSEMBLE_MODES["flips"]:
        y = apply_d8(x, i)
        assert y.shape == x.shape and torch.equal(y.sum(-2).amax(), torch.tensor(6.0))  # vertical
    turned = [i for i in ENSEMBLE_MODES["all"] if i not in ENSEMBLE_MODES["flips"]]
    assert all(apply_d8(x, i).sum(-1).amax() == 6.0 for i in turned)  # horizontal

    # a forward that only handles vertical streaks: flips keep it exact, 'all' does not
    def vertical_only(t: torch.Tensor) -> torch.Tensor:
        return t.amax(-2, keepdim=True).expand_as(t)

    assert torch.equal(self_ensemble(vertical_only, x, "flips"), vertical_only(x))
    assert not torch.allclose(self_ensemble(vertical_only, x, "all"), vertical_only(x))


class DeclaredConv(nn.Conv2d):
    """A 3×3 convolution that declares its inference memory, as aioir's restorers do."""

    inference_bytes_per_pixel = 100


def test_geometric_ensemble_module_averages_its_module_and_keeps_its_weights_and_memory():
    torch.manual_seed(0)
    conv = DeclaredConv(3, 3, 3, padding=1)
    wrapped = GeometricEnsemble(conv, "flips")
    x = torch.rand(2, 3, 8, 10)
    with torch.no_grad():
        assert torch.equal(wrapped(x), self_ensemble(conv, x, "flips"))
    assert list(wrapped.state_dict()) == ["module.weight", "module.bias"]
    assert wrapped.inference_bytes_per_pixel == 100 + 24
    assert GeometricEnsemble(nn.Identity(), "all").inference_bytes_per_pixel is None
    traced = torch.jit.trace(wrapped, x)
    assert torch.allclose(traced(x), wrapped(x))
    with pytest.raises(ValueError, match="flips"):
        GeometricEnsemble(conv, "x16")
