"""The dihedral group D8 on image tensors: distinct elements, exact inverses, axis-keeping subset."""

from __future__ import annotations

import pytest
import torch

from aioir.geometry import D8_SIZE, apply_d8, invert_d8


def test_the_eight_elements_are_distinct_and_invertible():
    x = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)
    seen = set()
    for k in range(D8_SIZE):
        y = apply_d8(x, k)
        assert y.shape[-2:] == ((4, 5) if k % 2 == 0 else (5, 4))
        assert torch.equal(invert_d8(y, k), x)
        seen.add(tuple(y.flatten().tolist()))
    assert len(seen) == D8_SIZE
    assert torch.equal(apply_d8(x, 0), x)


def test_numbering_flip_then_quarter_turns():
    x = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    assert apply_d8(x, 1).tolist() == [[1.0, 3.0], [0.0, 2.0]]  # counter-clockwise
    assert apply_d8(x, 4).tolist() == [[1.0, 0.0], [3.0, 2.0]]  # left-right flip
    assert apply_d8(x, 6).tolist() == [[2.0, 3.0], [0.0, 1.0]]  # = up-down flip
    assert apply_d8(x, 2).tolist() == [[3.0, 2.0], [1.0, 0.0]]  # half turn


@pytest.mark.parametrize("k", [-1, 8])
def test_out_of_range(k):
    with pytest.raises(ValueError, match=r"0\.\.7"):
        apply_d8(torch.zeros(1, 2, 2), k)
    with pytest.raises(ValueError, match=r"0\.\.7"):
        invert_d8(torch.zeros(1, 2, 2), k)


def test_the_elements_are_torch_rot90_of_the_flips():
    """Written with flips and a transpose (ONNX has no rot90), the same values as ``rot90``."""
    x = torch.rand(2, 3, 5, 7)
    for k in range(D8_SIZE):
        flipped = x.flip(-1) if k >= 4 else x
        assert torch.equal(apply_d8(x, k), torch.rot90(flipped, k % 4, dims=(-2, -1)))
