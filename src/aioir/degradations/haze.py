"""Haze by the atmospheric scattering model, with a given or a synthetic depth map.

``I = J·t + A·(1 − t)``, ``t = exp(−β·d)`` (Koschmieder; the model RESIDE used to render OTS/SOTS,
where ``A ∈ [0.8, 1.0]`` and ``β ∈ [0.04, 0.2]`` with depths of a few to ~10 units).

Without a depth map a plausible one is synthesised (:func:`synthetic_depth`): a vertical ramp
(far at the top, as in most outdoor photos), a smooth random low-frequency field and an image cue
(bright, grey, smooth regions — sky, distant walls — are pushed far, as the dark channel prior
suggests), all computed on a 64×64 grid and upsampled, so the map is smooth and halo-free.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
import torch.nn.functional as F

from aioir.degradations.base import Degradation, register_degradation, uniform

__all__ = ["Haze", "smooth_random_field", "synthetic_depth"]

_GRID = 64  # working resolution of the synthetic depth


def smooth_random_field(
    batch: int, size: tuple[int, int], cells: int, generator: torch.Generator
) -> torch.Tensor:
    """A ``B×1×H×W`` smooth random field in [0, 1] (uniform noise on a ``cells×cells`` grid, bicubic up)."""
    coarse = torch.rand(batch, 1, cells, cells, generator=generator)
    field = F.interpolate(coarse, size=size, mode="bicubic", align_corners=True)
    lo = field.amin(dim=(2, 3), keepdim=True)
    hi = field.amax(dim=(2, 3), keepdim=True)
    return (field - lo) / (hi - lo).clamp_min(1e-6)


def _box_blur(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Separable box blur with replicate padding (used twice ≈ Gaussian)."""
    k = 2 * radius + 1
    x = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    x = F.avg_pool2d(x, (k, 1), stride=1)
    return F.avg_pool2d(x, (1, k), stride=1)


def synthetic_depth(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A plausible relative depth ``B×1×H×W`` in [0, 1] (0 = nearest, 1 = farthest) for each image.

    Mix of a vertical ramp (far at the top; random curvature and slight horizontal tilt), a
    smooth random field (4–6 cells) and an image cue (local dark channel of the clean image:
    bright grey regions are far), smoothed and rescaled per image to [0, 1].
    """
    b, _, h, w = images.shape
    dev = images.device
    small = F.interpolate(images.float(), size=(_GRID, _GRID), mode="area").clamp(0.0, 1.0)
    ys = torch.linspace(0.0, 1.0, _GRID).view(1, 1, _GRID, 1)
    xs = torch.linspace(-0.5, 0.5, _GRID).view(1, 1, 1, _GRID)
    gamma = 0.6 + 0.9 * torch.rand(b, 1, 1, 1, generator=generator)  # ramp curvature
    tilt = 0.3 * (torch.rand(b, 1, 1, 1, generator=generator) - 0.5)
    ramp = (1.0 - ys).clamp_min(0.0) ** gamma + tilt * xs
    cells = 4 + int(torch.randint(0, 3, (), generator=generator))
    field = smooth_random_field(b, (_GRID, _GRID), cells, generator)
    # Image cue: local dark channel (min over channels, then a 5×5 min filter).
    dark = -F.max_pool2d(-small.amin(dim=1, keepdim=True), 5, stride=1, padding=2)
    dark = dark - dark.amin(dim=(2, 3), keepdim=True)
    dark = dark / dark.amax(dim=(2, 3), keepdim=True).clamp_min(1e-6)
    depth = 0.6 * ramp.to(dev) + 0.2 * field.to(dev) + 0.2 * dark
    depth = _box_blur(_box_blur(depth, 3), 3)
    lo = depth.amin(dim=(2, 3), keepdim=True)
    hi = depth.amax(dim=(2, 3), keepdim=True)
    depth = (depth - lo) / (hi - lo).clamp_min(1e-6)
    return F.interpolate(depth, size=(h, w), mode="bilinear", align_corners=False).clamp(0.0, 1.0)


def _depth_batch(depth_map: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """Bring a given depth map (``H×W``, ``1×H×W``, ``B×H×W`` or ``B×1×H×W``) to ``B×1×H×W``."""
    b, _, h, w = images.shape
    d = depth_map.to(device=images.device, dtype=images.dtype)
    if d.ndim == 2:
        d = d[None, None]
    elif d.ndim == 3:
        d = d[:, None]
    if d.ndim != 4 or d.shape[1] != 1 or d.shape[-2:] != (h, w) or d.shape[0] not in (1, b):
        raise ValueError(
            f"depth_map of shape {tuple(depth_map.shape)} does not match images {tuple(images.shape)}"
        )
    return d.expand(b, 1, h, w)


@register_degradation("haze", "haze")
@dataclasses.dataclass(frozen=True)
class Haze(Degradation):
    """Homogeneous haze: ``I = J·t + A·(1 − t)``, ``t = exp(−β·d)``.

    Parameters (valid range; range drawn by :meth:`sample` in brackets):

    * ``beta`` — scattering coefficient per depth unit, ``≥ 0`` (``[0.04, 0.2]``, RESIDE OTS/SOTS;
      0 is the identity). Severity raises it linearly: mild ≈ 0.04–0.09, severe ≈ 0.15–0.2.
    * ``airlight`` — atmospheric light level ``A`` in ``[0, 1]`` (``[0.7, 1.0]``; RESIDE uses
      ``[0.8, 1.0]``, we widen it slightly downwards for overcast scenes).
    * ``tint`` — per-channel airlight multipliers (RGB), each in ``[0.9, 1.1]`` (slight blue or
      warm tint, ``±4 %``); the airlight colour is ``clip(A·tint, 0, 1)``.
    * ``max_depth`` — depth of the farthest point of a synthetic map, in the same units as
      ``beta`` (``10``; so the far optical depth ``β·d`` spans 0.4–2.0).
    * ``min_depth`` — depth of the nearest point of a synthetic map (``1``).
    * ``depth_map`` — optional depth (same units; ``H×W``, ``B×H×W`` or ``B×1×H×W``), used as is
      instead of the synthetic one; excluded from comparison, hashing and :meth:`params`.
    """

    beta: float = 0.1
    airlight: float = 0.9
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)
    max_depth: float = 10.0
    min_depth: float = 1.0
    depth_map: torch.Tensor | None = dataclasses.field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.beta < 0:
            raise ValueError(f"beta must be ≥ 0, got {self.beta}")
        if not 0.0 <= self.airlight <= 1.0:
            raise ValueError(f"airlight must lie in [0, 1], got {self.airlight}")
        if len(self.tint) != 3 or any(not 0.5 <= c <= 1.5 for c in self.tint):
            raise ValueError(f"tint must be three factors near 1, got {self.tint}")
        if not 0.0 <= self.min_depth <= self.max_depth:
            raise ValueError("need 0 ≤ min_depth ≤ max_depth")
        object.__setattr__(self, "tint", tuple(float(c) for c in self.tint))

    @classmethod
    def sample(cls, severity: float, generator: torch.Generator) -> Haze:
        """β grows linearly with severity (0.04 → 0.2, ±10 %); airlight and tint are random."""
        s = min(max(float(severity), 0.0), 1.0)
        beta = (0.04 + 0.16 * s) * uniform(generator, 0.9, 1.1)
        airlight = uniform(generator, 0.7, 1.0)
        warm = uniform(generator, -0.04, 0.04)  # > 0: warm/yellowish, < 0: bluish
        tint = (1.0 + warm, 1.0 + 0.3 * warm, 1.0 - warm)
        return cls(beta=min(beta, 0.2), airlight=airlight, tint=tint)

    def depth(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The ``B×1×H×W`` depth used for ``images`` (given, or synthetic in [min_depth, max_depth])."""
        if self.depth_map is not None:
            return _depth_batch(self.depth_map, images)
        rel = synthetic_depth(images, generator)
        return self.min_depth + (self.max_depth - self.min_depth) * rel

    def transmission(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """``t = exp(−β·d)`` as a ``B×1×H×W`` map."""
        return torch.exp(-self.beta * self.depth(images, generator))

    def apply(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Haze a ``B×3×H×W`` batch in [0, 1]."""
        if self.beta == 0.0:
            return images.clamp(0.0, 1.0)
        t = self.transmission(images, generator)
        a = (self.airlight * torch.tensor(self.tint, dtype=images.dtype)).clamp(0.0, 1.0)
        a = a.to(images.device).view(1, 3, 1, 1)
        return (images * t + a * (1.0 - t)).clamp(0.0, 1.0)

    def params(self) -> dict[str, Any]:
        """Parameters as a plain dict (the depth map is reported only as given or not)."""
        out: dict[str, Any] = {"name": self.name}
        for f in dataclasses.fields(self):
            if f.name != "depth_map":
                out[f.name] = getattr(self, f.name)
        out["depth_map"] = "given" if self.depth_map is not None else None
        return out
