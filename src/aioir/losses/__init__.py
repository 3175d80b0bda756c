"""Training losses: reconstruction (L1, Charbonnier), UDAIR's CSCL, CORAL, and their composition.

- :mod:`~aioir.losses.reconstruction` — ``l1_loss``, ``charbonnier_loss``, ``fft_l1_loss``,
  ``mean_color_loss``;
- :mod:`~aioir.losses.contrastive` — ``cscl_loss`` (``mode="faithful"`` / ``"normalized"``);
- :mod:`~aioir.losses.coral` — ``covariance``, ``coral_loss`` (fp32; UDAIR's non-squared form);
- :mod:`~aioir.losses.composite` — ``LossSpec``, ``CompositeLoss``, ``register_loss``: losses
  configured by name and weight (``{l1: 1.0, cscl: 0.2}``).
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
from aioir.losses.contrastive import CSCLOutput, cscl_loss, random_derangement
from aioir.losses.coral import coral_loss, covariance
from aioir.losses.reconstruction import charbonnier_loss, fft_l1_loss, l1_loss, mean_color_loss

__all__ = [
    "LOSSES",
    "CSCLOutput",
    "CompositeLoss",
    "LossInputs",
    "LossSpec",
    "charbonnier_loss",
    "coral_loss",
    "covariance",
    "cscl_loss",
    "fft_l1_loss",
    "l1_loss",
    "mean_color_loss",
    "parse_loss_specs",
    "random_derangement",
    "register_loss",
]
