"""The dihedral group D8 on image tensors: the 8 flips/rotations of the square and their inverses.

Shared by training augmentation (:func:`aioir.data.transforms.random_flip_rotate`) and the
test-time self-ensemble (:mod:`aioir.nn.ensemble`), so both number the elements the same
way: element ``k`` is a left–right flip when ``k >= 4``, followed by ``k % 4`` counter-clockwise
quarter turns. ``{0, 2, 4, 6}`` (identity, half turn, left–right flip, up–down flip) are the
elements that keep the image axes.
"""

from __future__ import annotations

import torch

__all__ = ["D8_SIZE", "apply_d8", "invert_d8"]

#: Number of elements of D8 (distinct flips/rotations of a square image).
D8_SIZE = 8


def _check(k: int) -> None:
    if not 0 <= k < D8_SIZE:
        raise ValueError(f"D8 element must be in 0..{D8_SIZE - 1}, got {k}")


def _quarter_turns(image: torch.Tensor, turns: int) -> torch.Tensor:
    """``torch.rot90(image, turns, dims=(-2, -1))`` (``turns`` in 0–3) as flips and a transpose,
    the same values, in operators every ONNX opset has (``rot90`` has none)."""
    if turns == 1:
        return image.flip(-1).transpose(-2, -1)
    if turns == 2:
        return image.flip(-2).flip(-1)
    if turns == 3:
        return image.transpose(-2, -1).flip(-1)
    return image


def apply_d8(image: torch.Tensor, k: int) -> torch.Tensor:
    """Element ``k`` (0–7) of D8 on the last two axes; odd quarter turns swap H and W."""
    _check(k)
    out = image.flip(-1) if k >= 4 else image
    return _quarter_turns(out, k % 4)


def invert_d8(image: torch.Tensor, k: int) -> torch.Tensor:
    """Undo :func:`apply_d8`: ``invert_d8(apply_d8(x, k), k) == x``."""
    _check(k)
    out = _quarter_turns(image, -k % 4)
    return out.flip(-1) if k >= 4 else out
