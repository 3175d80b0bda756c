"""Noise: additive white Gaussian noise (the AWGN benchmarks) and realistic camera noise.

* :class:`GaussianNoise` (``"gaussian_noise"``) — σ on the 0–255 scale, by default the
  test-set protocol of the PromptIR family (8-bit clean image + σ·N(0, 1), clipped, 8-bit).
* :class:`CameraNoise` (``"camera_noise"``) — signal-dependent Poisson–Gaussian sensor noise
  added in linear raw space and sent back through a minimal ISP (white balance, colour matrix,
  sRGB gamma), with Bayer-demosaicking correlation, after Brooks et al. 2019.

The helpers :func:`srgb_to_linear`, :func:`linear_to_srgb` and :func:`poisson_gaussian` are
shared with :mod:`aioir.degradations.lowlight`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import torch
import torch.nn.functional as F

from aioir.degradations.base import Degradation, register_degradation, uniform

__all__ = [
    "CameraNoise",
    "GaussianNoise",
    "brooks_read_noise",
    "linear_to_srgb",
    "poisson_gaussian",
    "srgb_to_linear",
]

#: Brooks et al. 2019 (Unprocessing images, §3.3): log shot-noise variance gain range.
BROOKS_LOG_SHOT = (math.log(1e-4), math.log(1.2e-2))


def srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    """Inverse sRGB transfer function (IEC 61966-2-1) on values in [0, 1]."""
    x = x.clamp(0.0, 1.0)
    return torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: torch.Tensor) -> torch.Tensor:
    """sRGB transfer function (IEC 61966-2-1) on linear values in [0, 1]."""
    x = x.clamp(0.0, 1.0)
    return torch.where(x <= 0.0031308, 12.92 * x, 1.055 * x.clamp_min(1e-12) ** (1 / 2.4) - 0.055)


def brooks_read_noise(shot: float, generator: torch.Generator | None = None) -> float:
    """Read-noise variance paired with ``shot`` by Brooks et al.'s log-linear fit.

    ``log read = 2.18·log shot + 1.20 + N(0, 0.26²)``; without a generator the jitter is 0.
    """
    jitter = 0.0 if generator is None else 0.26 * float(torch.randn((), generator=generator))
    return math.exp(2.18 * math.log(shot) + 1.20 + jitter)


# Bilinear demosaicking kernels (Malvar et al. 2004 call this the "bilinear" baseline).
_DEMOSAIC_G = torch.tensor([[0.0, 1.0, 0.0], [1.0, 4.0, 1.0], [0.0, 1.0, 0.0]]) / 4.0
_DEMOSAIC_RB = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 4.0


def _bayer_mask(height: int, width: int, device: torch.device) -> torch.Tensor:
    """RGGB colour-filter-array mask, shape 1×3×H×W (one channel set per pixel)."""
    yy = torch.arange(height, device=device).view(-1, 1) % 2
    xx = torch.arange(width, device=device).view(1, -1) % 2
    red = (yy == 0) & (xx == 0)
    blue = (yy == 1) & (xx == 1)
    green = ~(red | blue)
    return torch.stack([red, green, blue]).unsqueeze(0).float()


def _demosaic(mosaic: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Bilinear demosaicking of a masked B×3×H×W field (zeros off the CFA sites).

    Written as nine shifted adds (much faster on CPU than a grouped 3×3 convolution); at the
    borders each output is normalised by the interpolation weight actually present.
    """
    h, w = mosaic.shape[-2:]
    kernels = torch.stack([_DEMOSAIC_RB, _DEMOSAIC_G, _DEMOSAIC_RB])
    kernels = kernels.to(device=mosaic.device, dtype=mosaic.dtype)
    values = F.pad(mosaic * mask, (1, 1, 1, 1))
    present = F.pad(mask, (1, 1, 1, 1))
    out = torch.zeros_like(mosaic)
    weight = torch.zeros_like(mask)
    for dy in range(3):
        for dx in range(3):
            tap = kernels[:, dy, dx].view(1, 3, 1, 1)
            out += tap * values[..., dy : dy + h, dx : dx + w]
            weight += tap * present[..., dy : dy + h, dx : dx + w]
    return out / weight.clamp_min(1e-6)


def poisson_gaussian(
    linear: torch.Tensor,
    shot: float,
    read: float,
    generator: torch.Generator,
    demosaic: bool = False,
) -> torch.Tensor:
    """Add heteroscedastic Poisson–Gaussian noise to a linear-light (raw) batch.

    ``y = shot·Poisson(x / shot) + √read·N(0, 1)`` so that ``Var[y | x] = shot·x + read``
    (Foi et al. 2008; Brooks et al. 2019 parameterisation: ``shot`` and ``read`` are variances
    on the [0, 1] scale). With ``demosaic`` only one colour per pixel (RGGB Bayer) receives a
    noise sample and the noise field is bilinearly demosaicked, which gives real cameras'
    spatially and chromatically correlated noise; the clean signal itself is left sharp.
    Randomness is drawn on the CPU generator; the result is *not* clipped.
    """
    if shot < 0 or read < 0:
        raise ValueError(f"shot and read variances must be >= 0, got {shot}, {read}")
    device = linear.device
    x = linear.detach().to("cpu", torch.float32).clamp_min(0.0)
    noise = torch.zeros_like(x)
    if shot > 0:
        noise += shot * torch.poisson(x / shot, generator=generator) - x
    if read > 0:
        noise += math.sqrt(read) * torch.randn(x.shape, generator=generator)
    noise = noise.to(device=device, dtype=linear.dtype)
    if demosaic:
        noise = _demosaic(noise, _bayer_mask(x.shape[-2], x.shape[-1], device).to(linear.dtype))
    return linear + noise


def _quantize(x: torch.Tensor, rounding: str = "round") -> torch.Tensor:
    """Clip to [0, 1] and snap to 8-bit levels (round to nearest, or truncate like uint8 casts)."""
    y = x.clamp(0.0, 1.0) * 255.0
    y = torch.floor(y) if rounding == "truncate" else torch.round(y)
    return y / 255.0


@register_degradation("gaussian_noise", task="noise")
@dataclasses.dataclass(frozen=True)
class GaussianNoise(Degradation):
    """Additive white Gaussian noise, σ on the 0–255 scale.

    Parameters
    ----------
    sigma:
        Standard deviation in 8-bit digital numbers (DN), range 0–75. The benchmarks use
        15 / 25 / 50 (CBSD68). :meth:`sample` maps severity linearly to σ ∈ [5, 60], so the
        tier midpoints are ≈ 14 / 32 / 51.
    quantize:
        ``True`` (default) is the test-set protocol: quantise the clean image to 8 bit, add
        σ·N(0, 1) on the 0–255 scale, clip to [0, 255] and snap to uint8 levels. ``False``:
        float noise added to the float image, then clipped to [0, 1].
    rounding:
        How the noisy image is snapped to uint8 when ``quantize``. ``"round"`` (default) is
        unbiased. ``"truncate"`` reproduces the PromptIR / AirNet / AdaIR code
        (``np.clip(...).astype(np.uint8)``), which floors and so biases every pixel by
        −0.5 DN on average (see ``docs/protocols.md``, "Metric conventions by code family").
    """

    sigma: float
    quantize: bool = True
    rounding: Literal["round", "truncate"] = "round"

    def __post_init__(self) -> None:
        if not 0.0 <= self.sigma <= 255.0:
            raise ValueError(f"sigma must lie in [0, 255] (typically 0-75), got {self.sigma}")
        if self.rounding not in ("round", "truncate"):
            raise ValueError(f"rounding must be 'round' or 'truncate', got {self.rounding!r}")

    @classmethod
    def sample(cls, severity: float, generator: torch.Generator) -> GaussianNoise:
        """σ = 5 + 55·severity (deterministic in severity; the tier draw supplies the spread)."""
        return cls(sigma=5.0 + 55.0 * float(severity))

    def apply(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Add independent noise to every image of the batch."""
        noise = torch.randn(images.shape, generator=generator).to(images.device, images.dtype)
        if not self.quantize:
            return (images + (self.sigma / 255.0) * noise).clamp(0.0, 1.0)
        clean = torch.round(images.clamp(0.0, 1.0) * 255.0)
        noisy = (clean + self.sigma * noise).clamp(0.0, 255.0)
        return _quantize(noisy / 255.0, self.rounding)


@register_degradation("camera_noise", task="noise")
@dataclasses.dataclass(frozen=True)
class CameraNoise(Degradation):
    """Signal-dependent "real camera" noise through an inverted and re-applied minimal ISP.

    Pipeline (after Brooks et al. 2019, "Unprocessing images for learned raw denoising"):
    sRGB → linear (inverse sRGB gamma) → inverse colour matrix → inverse white balance
    (raw) → ``shot·Poisson(x/shot) + √read·N(0,1)`` on an RGGB Bayer mosaic, bilinearly
    demosaicked → white balance → colour matrix → sRGB gamma → optional 8-bit rounding.
    In raw space ``Var[noise | x] = shot·x + read`` (heteroscedastic); white-balance gains and
    the colour matrix amplify red/blue and chroma noise as in SIDD-style phone images.

    Simplifications: no tone-curve inversion; the camera colour matrix is the one-parameter
    saturation matrix ``M = (1+s)·I − s·𝟙/3`` (rows sum to 1, so white stays white) instead of
    Brooks' random mix of four measured camera matrices.

    Parameters
    ----------
    shot:
        Shot-noise variance gain on the [0, 1] linear scale; Brooks range 1e-4 – 1.2e-2
        (log-uniform). 0 disables shot noise.
    read:
        Read-noise variance; Brooks pair it with shot by ``log read = 2.18·log shot + 1.20 +
        N(0, 0.26²)`` (≈ 6e-9 – 2e-4), see :func:`brooks_read_noise`.
    red_gain, blue_gain:
        White-balance gains of the simulated camera; Brooks: U(1.9, 2.4) and U(1.5, 1.9).
        1.0 disables white balancing.
    saturation:
        ``s`` of the colour matrix above, 0 – 1 (0: identity). Typical phone matrices
        correspond to roughly 0.3 – 0.7.
    demosaic:
        Bayer mosaic + bilinear demosaicking of the noise (spatial/chroma correlation).
    quantize:
        Round the output to 8-bit levels.
    """

    shot: float
    read: float
    red_gain: float = 1.0
    blue_gain: float = 1.0
    saturation: float = 0.0
    demosaic: bool = True
    quantize: bool = True

    def __post_init__(self) -> None:
        if self.shot < 0 or self.read < 0:
            raise ValueError("shot and read must be non-negative variances")
        if self.red_gain <= 0 or self.blue_gain <= 0:
            raise ValueError("white-balance gains must be positive")
        if not 0.0 <= self.saturation < 1.0:
            raise ValueError(f"saturation must lie in [0, 1), got {self.saturation}")

    @classmethod
    def sample(cls, severity: float, generator: torch.Generator) -> CameraNoise:
        """log shot moves linearly across Brooks' range with severity (± 0.15 of it in jitter)."""
        lo, hi = BROOKS_LOG_SHOT
        pos = min(max(float(severity) + uniform(generator, -0.15, 0.15), 0.0), 1.0)
        shot = math.exp(lo + (hi - lo) * pos)
        return cls(
            shot=shot,
            read=brooks_read_noise(shot, generator),
            red_gain=uniform(generator, 1.9, 2.4),
            blue_gain=uniform(generator, 1.5, 1.9),
            saturation=uniform(generator, 0.3, 0.7),
        )

    def _ccm(self, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """Camera→sRGB matrix M and its inverse, both 3×3."""
        s = self.saturation
        eye = torch.eye(3, device=device, dtype=dtype)
        third = torch.full((3, 3), 1.0 / 3.0, device=device, dtype=dtype)
        return (1 + s) * eye - s * third, (eye + s * third) / (1 + s)

    def apply(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Add independent camera noise to every image of the batch (shared parameters)."""
        ccm, ccm_inv = self._ccm(images.device, images.dtype)
        gains = torch.tensor([self.red_gain, 1.0, self.blue_gain], dtype=images.dtype)
        gains = gains.to(images.device).view(1, 3, 1, 1)
        linear = srgb_to_linear(images)
        raw = torch.einsum("ij,bjhw->bihw", ccm_inv, linear) / gains
        noisy = poisson_gaussian(raw, self.shot, self.read, generator, demosaic=self.demosaic)
        rgb = torch.einsum("ij,bjhw->bihw", ccm, noisy * gains)
        out = linear_to_srgb(rgb.clamp(0.0, 1.0))
        return _quantize(out) if self.quantize else out
