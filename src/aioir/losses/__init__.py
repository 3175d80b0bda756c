"""Training losses: reconstruction (L1, Charbonnier, FFT, mean colour, PSNR), CORAL, and their composition.

- :mod:`~aioir.losses.reconstruction` — ``l1_loss``, ``charbonnier_loss``, ``fft_l1_loss``,
  ``mean_color_loss``, ``psnr_loss``;
- :mod:`~aioir.losses.coral` — ``covariance``, ``coral_loss`` (fp32; UDAIR's non-squared form);
- :mod:`~aioir.losses.composite` — ``LossSpec``, ``CompositeLoss``, ``register_loss``: losses
  configured by name and weight (``{l1: 1.0, cscl: 0.2}``; method packages register their own,
  e.g. UDAIR's ``cscl``).
"""

from __future__ import annotations

from aioir.losses.composite import (
    LOSSES,
    CompositeLoss,
    LossInputs,
    LossSpec,
    parse_loss_specs,
    register_loss,
)
from aioir.losses.coral import coral_loss, covariance
from aioir.losses.reconstruction import (
    charbonnier_loss,
    fft_l1_loss,
    l1_loss,
    mean_color_loss,
    psnr_loss,
)

__all__ = [
    "LOSSES",
    "CompositeLoss",
    "LossInputs",
    "LossSpec",
    "charbonnier_loss",
    "coral_loss",
    "covariance",
    "fft_l1_loss",
    "l1_loss",
    "mean_color_loss",
    "parse_loss_specs",
    "psnr_loss",
    "register_loss",
]
