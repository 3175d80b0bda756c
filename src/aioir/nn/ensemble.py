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
(streaks turned sideways). Mode ``mirror`` keeps up up as well (identity and the left–right
flip, twice the cost): what grows with depth grows towards the top of most photos (haze), and
the default model's classifier reads a hazy photo turned upside down as clean — under ``flips``
it loses 1.8 dB of haze on the bar, under ``mirror`` none, and gains on rain, low light and
underwater (run 70).

When no mode is named (``self_ensemble=True``, a bare ``--self-ensemble``) the model's own is
used (:func:`preferred_mode`): a model that reads its input's orientation says ``mirror`` (its
``self_ensemble_mode``, as the filter-bank head with a classifier does), any other ``flips``.

:class:`GeometricEnsemble` wraps one module the same way (a filter-bank expert); the
restorer's ``self_ensemble`` option (:class:`aioir.restore.Restorer`) wraps the whole model.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

from aioir.geometry import D8_SIZE, apply_d8, invert_d8
from aioir.nn.inference_memory import declared_bytes_per_pixel

__all__ = ["ENSEMBLE_MODES", "GeometricEnsemble", "preferred_mode", "self_ensemble"]

#: Self-ensemble modes → the D8 elements they average (numbered as :mod:`aioir.geometry`).
ENSEMBLE_MODES: dict[str, tuple[int, ...]] = {
    "flips": (0, 2, 4, 6),  # identity, half turn, left–right flip, up–down flip
    "all": tuple(range(D8_SIZE)),
    "mirror": (0, 4),  # identity, left–right flip: up stays up
}


def preferred_mode(model: nn.Module) -> str:
    """The self-ensemble mode for ``model`` when none is named: its ``self_ensemble_mode``
    (one of :data:`ENSEMBLE_MODES`) where it declares one, else ``flips``."""
    mode = getattr(model, "self_ensemble_mode", None)
    return mode if mode in ENSEMBLE_MODES else "flips"


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


class GeometricEnsemble(nn.Module):
    """``module`` run as a self-ensemble: :func:`self_ensemble` of it in ``mode``.

    A plain wrapper, so a model part (a filter-bank expert) can be averaged over flips without
    the whole restorer paying for it; its weights are ``module``'s under ``module.``.
    """

    def __init__(self, module: nn.Module, mode: str = "flips") -> None:
        if mode not in ENSEMBLE_MODES:
            raise ValueError(
                f"self-ensemble mode must be one of {sorted(ENSEMBLE_MODES)}, got {mode!r}"
            )
        super().__init__()
        self.module = module
        self.mode = mode

    @property
    def inference_bytes_per_pixel(self) -> int | None:
        """``module``'s declared activation memory per pixel plus the running sum and one
        transformed input (float32 RGB each); ``None`` when it declares none."""
        inner = declared_bytes_per_pixel(self.module)
        return None if inner is None else inner + 2 * 3 * 4

    def forward(self, x: Tensor) -> Tensor:
        """The mean of ``module`` over the elements of ``mode``, each mapped back."""
        return self_ensemble(self.module, x, self.mode)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"
