"""Geometric self-ensemble: average a restorer over flips and rotations of its input.

The "+" results of EDSR (Lim et al. 2017) and the ``x8`` test mode of KAIR/SwinIR: the network is
run on each of the eight elements of the dihedral group (four quarter turns, each with and
without a left–right flip), every output is mapped back, and the eight are averaged (mode
``all``). It removes the part of the error that is not equivariant (checkerboard patterns,
orientation biases), at eight times the cost.

Mode ``flips`` uses only the four elements that keep the image axes (identity, left–right and
up–down flips, half turn): degradations with an orientation, such as near-vertical rain
streaks, stay as the network saw them in training. On the default model the quarter turns cost
3.8 dB on rain (streaks turned horizontal), so ``flips`` is the mode the command line uses
when none is named.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

__all__ = ["DIHEDRAL_SIZE", "ENSEMBLE_MODES", "dihedral", "inverse_dihedral", "self_ensemble"]

#: Number of distinct flips/rotations of an image (the dihedral group of the square).
DIHEDRAL_SIZE = 8

#: Self-ensemble modes → the dihedral elements they average (see :func:`dihedral`).
ENSEMBLE_MODES: dict[str, tuple[int, ...]] = {
    "flips": (0, 2, 4, 6),  # identity, half turn, left–right flip, up–down flip
    "all": tuple(range(DIHEDRAL_SIZE)),
}


def _check(index: int) -> None:
    if not 0 <= index < DIHEDRAL_SIZE:
        raise ValueError(f"dihedral index must be in 0..{DIHEDRAL_SIZE - 1}, got {index}")


def dihedral(x: Tensor, index: int) -> Tensor:
    """Element ``index`` (0–7) of the dihedral group applied to the last two axes of ``x``.

    ``index % 4`` quarter turns (counter-clockwise), then a left–right flip when ``index >= 4``;
    0 is the identity. Odd quarter turns swap height and width.
    """
    _check(index)
    out = x.rot90(index % 4, dims=(-2, -1))
    return out.flip(-1) if index >= 4 else out


def inverse_dihedral(x: Tensor, index: int) -> Tensor:
    """Undo :func:`dihedral` ``index``: ``inverse_dihedral(dihedral(x, i), i) == x``."""
    _check(index)
    out = x.flip(-1) if index >= 4 else x
    return out.rot90(-(index % 4), dims=(-2, -1))


def self_ensemble(forward: Callable[[Tensor], Tensor], x: Tensor, mode: str = "all") -> Tensor:
    """The mean of ``inverse_dihedral(forward(dihedral(x, i)), i)`` over the elements of ``mode``.

    ``forward`` maps a ``B×C×H×W`` tensor to one of the same spatial size (it may pad, tile or
    change the device internally). The sum is accumulated in place, so memory stays at one
    output plus one pass.
    """
    if mode not in ENSEMBLE_MODES:
        raise ValueError(
            f"self-ensemble mode must be one of {sorted(ENSEMBLE_MODES)}, got {mode!r}"
        )
    elements = ENSEMBLE_MODES[mode]
    total: Tensor | None = None
    for index in elements:
        out = inverse_dihedral(forward(dihedral(x, index)), index)
        total = out.clone() if total is None else total.add_(out)
    assert total is not None
    return total.div_(len(elements))
