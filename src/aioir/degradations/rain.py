"""Synthetic rain streaks in the style of Rain100L / Rain13K.

Recipe (the classic Photoshop-style rain rendering used for Rain100L/H): sparse random drops of
random intensity are smeared along the fall direction by an anti-aliased line kernel (length,
width, tapered ends), giving one streak layer; an optional second, finer layer at a slightly
different angle imitates farther rain; the layers are screen-blended onto the scene (streaks
only brighten), and heavy rain may add a slight grey veil (rain accumulation / mist).
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F

from aioir.degradations.base import Degradation, register_degradation, uniform

__all__ = ["RainStreaks", "streak_kernel"]

_SUPERSAMPLE = 4
_LENGTH_FACTORS = (0.6, 1.0, 1.4)


def _kernel_size(length: float, width: float) -> int:
    sigma = max(float(width), 0.3) / 2.3548
    return 2 * (math.ceil(max(float(length), 1.0) / 2 + 3 * sigma) + 1) + 1


def streak_kernel(
    angle: float, length: float, width: float, size: int | None = None
) -> torch.Tensor:
    """An anti-aliased ``K×K`` line kernel with peak ≈ 1 (float32, CPU).

    ``angle`` is in degrees from vertical (positive leans the top of the streak to the left,
    i.e. rain falling to the right), ``length`` the streak length and ``width`` its cross-section
    FWHM, both in pixels. The last quarter at each end tapers linearly to zero. ``size`` (odd)
    defaults to the smallest that holds the streak.
    """
    length = max(float(length), 1.0)
    sigma = max(float(width), 0.3) / 2.3548
    size = _kernel_size(length, width) if size is None else int(size)
    if size % 2 != 1:
        raise ValueError(f"kernel size must be odd, got {size}")
    n = size * _SUPERSAMPLE
    coords = (torch.arange(n, dtype=torch.float64) + 0.5) / _SUPERSAMPLE - size / 2
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    th = math.radians(angle)
    along = xx * math.sin(th) + yy * math.cos(th)
    across = xx * math.cos(th) - yy * math.sin(th)
    ramp = max(length / 4, 0.5)
    window = ((length / 2 - along.abs()) / ramp).clamp(0.0, 1.0)
    k = window * torch.exp(-0.5 * (across / sigma) ** 2)
    k = F.avg_pool2d(k[None, None], _SUPERSAMPLE)[0, 0]
    return k.float()


def _fft_conv_valid(canvas: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Valid 2-D convolution of ``B×1×(H+K−1)×(W+K−1)`` with a ``K×K`` kernel via FFT."""
    hp, wp = canvas.shape[-2:]
    k = kernel.shape[-1]
    spec = torch.fft.rfft2(canvas) * torch.fft.rfft2(kernel, s=(hp, wp))
    full = torch.fft.irfft2(spec, s=(hp, wp))
    # Circular convolution: output pixel (i, j) of the valid part sits at (i + K − 1, j + K − 1).
    return full[..., k - 1 :, k - 1 :]


@register_degradation("rain", "rain")
@dataclasses.dataclass(frozen=True)
class RainStreaks(Degradation):
    """Rain streaks, screen-blended onto the scene.

    Parameters (valid range; range drawn by :meth:`sample` in brackets):

    * ``angle`` — degrees from vertical, ``[-60, 60]`` (``[-25, 25]``, the Rain100L look).
    * ``density`` — fraction of pixels that seed a drop, ``[0, 0.1]`` (``0.002–0.0096``, grows
      with severity; mild ≈ Rain100L, severe ≈ Rain100H / heavy Rain13K).
    * ``length`` — nominal streak length in pixels, ``[1, 120]`` (``12–41``, grows with
      severity); each drop uses ``0.6, 1 or 1.4 ×`` this length.
    * ``width`` — streak cross-section FWHM in pixels, ``[0.3, 6]`` (``0.8–2.1``, grows with
      severity).
    * ``brightness`` — peak streak intensity in [0, 1] (``0.6–1.0``, grows with severity);
      each drop's intensity is drawn in ``[0.35, 1]·brightness``.
    * ``layers`` — 1 or 2; the second layer (farther rain) has half the length, 0.6× the width,
      0.6× the brightness, 1.5× the density, at ``angle + angle_spread``.
    * ``angle_spread`` — angle offset of the second layer in degrees (``[-8, 8]``).
    * ``veil`` — grey (0.85) mist opacity in ``[0, 1]`` (0 below severity 2/3, up to 0.2 at 1).
    """

    angle: float = 10.0
    density: float = 0.004
    length: float = 20.0
    width: float = 1.5
    brightness: float = 0.8
    layers: int = 1
    angle_spread: float = 0.0
    veil: float = 0.0

    def __post_init__(self) -> None:
        if not -90.0 <= self.angle <= 90.0:
            raise ValueError(f"angle must lie in [-90, 90] degrees, got {self.angle}")
        if not 0.0 <= self.density <= 1.0:
            raise ValueError(f"density must lie in [0, 1], got {self.density}")
        if self.length < 1.0 or self.width <= 0.0:
            raise ValueError("need length ≥ 1 and width > 0")
        if not 0.0 <= self.brightness <= 1.0:
            raise ValueError(f"brightness must lie in [0, 1], got {self.brightness}")
        if self.layers not in (1, 2):
            raise ValueError(f"layers must be 1 or 2, got {self.layers}")
        if not 0.0 <= self.veil <= 1.0:
            raise ValueError(f"veil must lie in [0, 1], got {self.veil}")

    @classmethod
    def sample(cls, severity: float, generator: torch.Generator) -> RainStreaks:
        """Density, length, width and brightness grow with severity; angle is random."""
        s = min(max(float(severity), 0.0), 1.0)
        angle = uniform(generator, -25.0, 25.0)
        density = (0.0025 + 0.0055 * s) * uniform(generator, 0.85, 1.2)
        length = (14.0 + 22.0 * s) * uniform(generator, 0.85, 1.15)
        width = uniform(generator, 0.8, 1.3) + 0.8 * s
        brightness = min(0.65 + 0.3 * s + uniform(generator, -0.05, 0.05), 1.0)
        layers = 2 if uniform(generator, 0.0, 1.0) < 0.15 + 0.6 * s else 1
        spread = uniform(generator, -8.0, 8.0)
        veil = 0.0 if s < 2.0 / 3.0 else 0.6 * (s - 2.0 / 3.0) * uniform(generator, 0.7, 1.0)
        return cls(
            angle=angle,
            density=density,
            length=length,
            width=width,
            brightness=max(brightness, 0.0),
            layers=layers,
            angle_spread=spread,
            veil=veil,
        )

    def _layer(
        self,
        shape: tuple[int, int, int],
        angle: float,
        density: float,
        length: float,
        width: float,
        brightness: float,
        generator: torch.Generator,
    ) -> torch.Tensor:
        """One ``B×1×H×W`` streak layer in [0, brightness] (drawn on the CPU).

        Each drop gets a random intensity in [0.35, 1] and one of three lengths
        (``0.6, 1, 1.4 × length``), so streaks in one layer vary like real rain.
        """
        b, h, w = shape
        k = _kernel_size(_LENGTH_FACTORS[-1] * length, width)
        seeds = torch.rand(b, 1, h + k - 1, w + k - 1, generator=generator)
        level = torch.rand(b, 1, h + k - 1, w + k - 1, generator=generator)
        group = torch.randint(0, len(_LENGTH_FACTORS), seeds.shape, generator=generator)
        drops = (seeds < density).float() * (0.35 + 0.65 * level)
        layer = torch.zeros(b, 1, h, w)
        for g, factor in enumerate(_LENGTH_FACTORS):  # three streak lengths, not a pixel loop
            kernel = streak_kernel(angle, factor * length, width, size=k)
            layer += _fft_conv_valid(drops * (group == g), kernel)
        return layer.clamp(0.0, 1.0) * brightness

    def rain_layer(self, shape: tuple[int, int, int], generator: torch.Generator) -> torch.Tensor:
        """The combined ``B×1×H×W`` rain layer in [0, 1] (CPU)."""
        rain = self._layer(
            shape, self.angle, self.density, self.length, self.width, self.brightness, generator
        )
        if self.layers == 2:
            far = self._layer(
                shape,
                max(min(self.angle + self.angle_spread, 90.0), -90.0),
                min(1.5 * self.density, 1.0),
                max(0.5 * self.length, 1.0),
                max(0.6 * self.width, 0.5),
                0.6 * self.brightness,
                generator,
            )
            rain = 1.0 - (1.0 - rain) * (1.0 - far)
        return rain

    def apply(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Add rain to a ``B×3×H×W`` batch in [0, 1]."""
        b, _, h, w = images.shape
        rain = self.rain_layer((b, h, w), generator).to(device=images.device, dtype=images.dtype)
        out = 1.0 - (1.0 - images) * (1.0 - rain)  # screen blend: streaks only brighten
        if self.veil > 0.0:
            out = out * (1.0 - self.veil) + self.veil * 0.85
        return out.clamp(0.0, 1.0)
