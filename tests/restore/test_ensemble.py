"""Geometric self-ensemble: the eight flips/rotations, their inverses, and the average."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from aioir.restore.api import Restorer
from aioir.restore.ensemble import DIHEDRAL_SIZE, dihedral, inverse_dihedral, self_ensemble


def test_the_eight_transforms_are_distinct_and_invertible():
    x = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)
    seen = set()
    for i in range(DIHEDRAL_SIZE):
        y = dihedral(x, i)
        assert y.shape[-2:] == ((4, 5) if i % 2 == 0 else (5, 4))
        assert torch.equal(inverse_dihedral(y, i), x)
        seen.add(tuple(y.flatten().tolist()))
    assert len(seen) == DIHEDRAL_SIZE
    assert torch.equal(dihedral(x, 0), x)
    with pytest.raises(ValueError, match=r"0\.\.7"):
        dihedral(x, 8)


def test_equivariant_forward_is_unchanged_and_others_are_averaged():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 6, 7, generator=g)
    assert torch.allclose(self_ensemble(lambda t: t * 2, x), x * 2)

    # a shift to the right is not equivariant: the mean of its 8 conjugates, by hand
    def shift(t: torch.Tensor) -> torch.Tensor:
        return torch.roll(t, 1, dims=-1)

    expected = sum(inverse_dihedral(shift(dihedral(x, i)), i) for i in range(8)) / 8
    out = self_ensemble(shift, x)
    assert torch.allclose(out, expected)
    assert not torch.allclose(out, shift(x))


class Asymmetric(nn.Module):
    """A fixed non-symmetric 3×3 convolution (any orientation bias shows up)."""

    size_multiple = 4

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.arange(81, dtype=torch.float32).reshape(3, 3, 3, 3) / 200)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[-2] % 4 == 0 and x.shape[-1] % 4 == 0
        return self.conv(x)


@pytest.mark.parametrize("tile", [0, 8])
def test_restorer_self_ensemble_pads_tiles_and_averages(tile):
    g = torch.Generator().manual_seed(1)
    x = torch.rand(1, 3, 13, 10, generator=g) * 0.2
    model = Asymmetric()
    plain = Restorer(model, device="cpu", tile=tile, tile_overlap=2)
    ens = Restorer(model, device="cpu", tile=tile, tile_overlap=2, self_ensemble=True)
    out = ens.restore_tensor(x)
    assert out.shape == x.shape
    expected = sum(inverse_dihedral(plain.restore_tensor(dihedral(x, i)), i) for i in range(8)) / 8
    assert torch.allclose(out, expected, atol=1e-6)
    assert not torch.allclose(out, plain.restore_tensor(x), atol=1e-3)
    assert "self_ensemble=True" in repr(ens)
