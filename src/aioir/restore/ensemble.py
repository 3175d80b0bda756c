"""Geometric self-ensemble: average a restorer over flips and rotations of its input.

The "+" results of EDSR (Lim et al. 2017) and the ``x8`` test mode of KAIR/SwinIR: the network is
run on each of the eight elements of the dihedral group (four quarter turns, each with and
without a left–right flip), every output is mapped back, and the eight are averaged (mode
``all``). It removes the part of the error that is not equivariant (checkerboard patterns,
orientation biases), at eight times the cost.

Mode ``flips`` uses only the four elements that keep the image axes (identity, left–right and
up–down flips, half turn): degradations with an orientation, such as near-vertical rain
streaks, stay as the network saw them in training — these four are also the group UDAIR's
training augmentation draws from. On the default model the quarter turns cost 3.8 dB on rain
(streaks turned sideways), so ``flips`` is the mode the command line uses when none is named.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from aioir.geometry import D8_SIZE, apply_d8, invert_d8

__all__ = ["ENSEMBLE_MODES", "self_ensemble"]

#: Self-ensemble modes → the D8 elements they average (numbered as :mod:`aioir.geometry`).
ENSEMBLE_MODES: dict[str, tuple[int, ...]] = {
    "flips": (0, 2, 4, 6),  # identity, half turn, left–right flip, up–down flip
    "all": tuple(range(D8_SIZE)),
}


def self_ensemble(forward: Callable[[Tensor], Tensor], x: Tensor, mode: str = "all") -> Tensor:
    """The mean of ``invert_d8(forward(apply_d8(x, k)), k)`` over the elements ``k`` of ``mode``.

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
    for k in elements:
        out = invert_d8(forward(apply_d8(x, k)), k)
        total = out.clone() if total is None else total.add_(out)
    assert total is not None
    return total.div_(len(elements))
