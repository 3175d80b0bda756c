"""Low light: under-exposure simulated in linear light, with sensor noise and 8-bit output.

Pipeline: sRGB → linear (inverse sRGB gamma) → ``exposure · x^gamma`` (less light, plus the
crushed shadows of a darker tone curve) → white-balance error (per-channel gains) →
Poisson–Gaussian sensor noise in linear space (shot + read, Bayer-demosaicked; visible in the
dark regions once gamma-encoded, as in LOL's low-light shots) → sRGB gamma → 8-bit rounding
(banding in the shadows).

Informed by Lv et al. 2021 ("Attention guided low-light image enhancement", IJCV: synthetic
low light = linear scaling + gamma + Poisson–Gaussian noise) and Cui et al. 2021 (MAET,
ICCV: unprocess to raw, darken by 0.01–0.1, Brooks shot/read noise, quantise, re-process).
Our exposure range is milder at the low end (0.03–0.5) and the extra gamma ≤ 1.6 replaces
MAET's 2.0–3.5 *display* gamma, because we invert the true sRGB curve first.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from aioir.degradations.base import Degradation, register_degradation, uniform
from aioir.degradations.noise import (
    _quantize,
    brooks_read_noise,
    linear_to_srgb,
    poisson_gaussian,
    srgb_to_linear,
)

__all__ = ["LowLight"]

EXPOSURE_RANGE = (0.5, 0.03)  # linear-light scale at severity 0 and 1
SHOT_RANGE = (2e-4, 2e-3)  # shot-noise variance gain at severity 0 and 1 (log-interpolated)


def _log_lerp(a: float, b: float, t: float) -> float:
    return math.exp(math.log(a) + (math.log(b) - math.log(a)) * t)


@register_degradation("low_light", task="lowlight")
@dataclasses.dataclass(frozen=True)
class LowLight(Degradation):
    """Under-exposed, noisy photograph (LOL-like) synthesised in linear light.

    Parameters
    ----------
    exposure:
        Linear-light scale factor, 0.03–0.5 (smaller = darker). :meth:`sample` interpolates
        log-linearly from 0.5 (severity 0) to 0.03 (severity 1): tier midpoints ≈ 0.31 / 0.12
        / 0.05; a mid-grey (sRGB 0.5) becomes sRGB ≈ 0.31 / 0.20 / 0.12 before the gamma.
    gamma:
        Extra tone exponent applied to linear values before scaling, 1.0–1.6 (1 = none;
        larger crushes shadows more). :meth:`sample`: 1 + 0.4·severity ± 0.05.
    shot, read:
        Poisson-shot and Gaussian-read variances on the [0, 1] linear scale (as in
        :class:`~aioir.degradations.noise.CameraNoise`). :meth:`sample`: shot log-interpolated
        from 2e-4 to 2e-3 with severity (± 0.3 in log), read from Brooks et al.'s fit.
    red_gain, blue_gain:
        White-balance error (green is 1), 0.8–1.25; :meth:`sample` draws U(0.92, 1.08).
    demosaic:
        Bayer-demosaicking correlation of the noise.
    quantize:
        Round the output to 8-bit levels.
    """

    exposure: float
    gamma: float = 1.0
    shot: float = 0.0
    read: float = 0.0
    red_gain: float = 1.0
    blue_gain: float = 1.0
    demosaic: bool = True
    quantize: bool = True

    def __post_init__(self) -> None:
        if not 0.0 < self.exposure <= 1.0:
            raise ValueError(
                f"exposure must lie in (0, 1] (typically 0.03-0.5), got {self.exposure}"
            )
        if not 0.5 <= self.gamma <= 3.0:
            raise ValueError(f"gamma must lie in [0.5, 3] (typically 1-1.6), got {self.gamma}")
        if self.shot < 0 or self.read < 0:
            raise ValueError("shot and read must be non-negative variances")
        if self.red_gain <= 0 or self.blue_gain <= 0:
            raise ValueError("white-balance gains must be positive")

    @classmethod
    def sample(cls, severity: float, generator: torch.Generator) -> LowLight:
        """Darker, crushed and noisier with severity; a random mild white-balance error."""
        s = float(severity)
        exposure = _log_lerp(*EXPOSURE_RANGE, s) * math.exp(uniform(generator, -0.1, 0.1))
        gamma = max(1.0, 1.0 + 0.4 * s + uniform(generator, -0.05, 0.05))
        shot = _log_lerp(*SHOT_RANGE, s) * math.exp(uniform(generator, -0.3, 0.3))
        return cls(
            exposure=min(exposure, 1.0),
            gamma=gamma,
            shot=shot,
            read=brooks_read_noise(shot, generator),
            red_gain=uniform(generator, 0.92, 1.08),
            blue_gain=uniform(generator, 0.92, 1.08),
        )

    def apply(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Darken every image identically; each gets its own noise realisation."""
        gains = torch.tensor([self.red_gain, 1.0, self.blue_gain], dtype=images.dtype)
        gains = gains.to(images.device).view(1, 3, 1, 1)
        linear = srgb_to_linear(images) ** self.gamma
        dark = (self.exposure * linear * gains).clamp(0.0, 1.0)
        noisy = poisson_gaussian(dark, self.shot, self.read, generator, demosaic=self.demosaic)
        out = linear_to_srgb(noisy.clamp(0.0, 1.0))
        return _quantize(out) if self.quantize else out
