"""A classical restorer's output refined by a small CNN (:class:`PriorRefiner`).

``out = prior(x) + conv(ReLU(… conv([x, prior(x)])))``: a parameter-free classical restorer —
the *prior*, any registered model, e.g. the dark channel prior — runs first, and a plain stack
of 3×3 convolutions (:func:`~aioir.models.residual_cnn.conv_relu_stack`) reads the input and the
prior's output side by side and predicts a correction of the latter. The correction starts at
zero, so the untrained model is the prior exactly, and training only ever has to learn where
the prior goes wrong (the dark channel prior's halos, its over-saturated skies, the haze it
leaves in bright regions) rather than the whole restoration.

Why it is here: a network trained on synthetic haze alone (the default model's haze expert)
beats the dark channel prior on photos like its training photos and falls 1.5 dB under it on
photos unlike them; the prior generalises, the network fits. Anchored to the prior's output,
the network starts where the prior is and can only add what it learnt
(``docs/history.md``, run 52).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from aioir.models.registry import Preset, create_model, register_presets
from aioir.models.residual_cnn import conv_relu_stack

__all__ = ["PRIOR_REFINER_PRESETS", "PriorRefiner"]


class PriorRefiner(nn.Module):
    """A registered parameter-free restorer (``prior``) followed by a learnt correction.

    Args:
        prior: the registered name of the classical restorer that runs first (it must have no
            trainable parameters: it is not trained here and not saved with the model).
        prior_options: keyword overrides of that model's preset.
        width: channels of the correction's hidden layers.
        depth: number of convolutions of the correction (≥ 2).
    """

    def __init__(
        self,
        prior: str = "dark-channel-prior",
        prior_options: dict[str, Any] | None = None,
        width: int = 48,
        depth: int = 10,
    ) -> None:
        super().__init__()
        self.prior = create_model(prior, **(prior_options or {}))
        if any(True for _ in self.prior.parameters()):
            raise ValueError(f"the prior {prior!r} has trainable parameters; it must have none")
        self.size_multiple = int(getattr(self.prior, "size_multiple", 1))
        self.refiner = conv_relu_stack(6, 3, width, depth, zero_init_output=True)

    def forward(self, x: Tensor) -> Tensor:
        """Restore ``x`` (B×3×H×W in [0, 1], any size); returns the same shape."""
        prior = self.prior(x)
        return prior + self.refiner(torch.cat([x, prior], dim=1))


PRIOR_REFINER_PRESETS: dict[str, Preset] = {
    "dcp-small": Preset(
        {"prior": "dark-channel-prior", "width": 48, "depth": 10},
        parameters=170_211,
        description="the dark channel prior's output refined by a 10-layer, 48-channel CNN "
        "reading the input beside it (a haze expert anchored to the classical dehazer)",
        inference_bytes_per_pixel=448,  # restore_large.py --bytes-per-pixel --threads 1
    ),
    "dcp-tiny": Preset(
        {"prior": "dark-channel-prior", "width": 8, "depth": 3},
        parameters=1_243,
        description="the dark channel prior refined by a 3-layer, 8-channel CNN (tests)",
    ),
}

register_presets("prior-refiner", PriorRefiner, PRIOR_REFINER_PRESETS)
