"""Underwater colour cast: wavelength-dependent attenuation plus blue-green backscatter.

Image formation as in Li, Anwar & Porikli (2020), "Underwater scene prior inspired deep
underwater image and video enhancement" (UWCNN), for each channel λ ∈ {R, G, B}::

    I_λ = J_λ · E_λ · T_λ(x) + B_λ · (1 − T_λ(x)),    T_λ(x) = N_λ^{d(x)},  E_λ = N_λ^{D}

with ``N_λ`` the normalised residual energy ratio per metre of the Jerlov water type, ``d(x)`` the
scene distance (metres), ``D`` the depth below the surface that the illumination travels and
``B_λ`` the homogeneous veiling (background) light.

``N_λ = exp(−K_d(λ))`` from Jerlov's diffuse attenuation coefficients (Marine Optics, 2nd ed.,
1976, Table XXVII) at 650 nm (R), 525 nm (G) and 450 nm (B). In open-ocean types (I–III) red
decays fastest, then green, blue least; in coastal types (1C–9C) blue drops below green (green
water) and in 5C–9C even below red, so :meth:`UnderwaterCast.sample` draws from I–3C only.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch

from aioir.degradations.base import Degradation, register_degradation, uniform
from aioir.degradations.haze import _depth_batch, synthetic_depth

__all__ = ["JERLOV_KD", "SAMPLED_WATER_TYPES", "UnderwaterCast", "residual_energy_ratio"]

#: Jerlov (1976) diffuse attenuation K_d in 1/m at (650, 525, 450) nm, i.e. (R, G, B).
JERLOV_KD: dict[str, tuple[float, float, float]] = {
    "I": (0.36, 0.043, 0.019),
    "IA": (0.37, 0.048, 0.026),
    "IB": (0.375, 0.054, 0.036),
    "II": (0.40, 0.076, 0.068),
    "III": (0.445, 0.116, 0.135),
    "1C": (0.45, 0.13, 0.25),
    "3C": (0.46, 0.20, 0.39),
    "5C": (0.54, 0.31, 0.56),
    "7C": (0.63, 0.49, 0.89),
    "9C": (0.76, 0.78, 1.6),
}

#: Water types drawn by ``sample``, from clearest to most turbid (severity shifts the window).
SAMPLED_WATER_TYPES: tuple[str, ...] = ("I", "IA", "IB", "II", "III", "1C", "3C")


def residual_energy_ratio(water_type: str) -> tuple[float, float, float]:
    """``N_λ = exp(−K_d(λ))`` per metre for (R, G, B)."""
    try:
        kd = JERLOV_KD[water_type]
    except KeyError:
        raise ValueError(
            f"unknown Jerlov water type {water_type!r}; expected one of {list(JERLOV_KD)}"
        ) from None
    red, green, blue = kd
    return math.exp(-red), math.exp(-green), math.exp(-blue)


def default_background(water_type: str, level: float = 0.75) -> tuple[float, float, float]:
    """Veiling light of a water type: the colour of white light after 4 m of that water, mixed
    with 15 % grey (suspended particles scatter all wavelengths), peak scaled to ``level``."""
    red, green, blue = (v**4 for v in residual_energy_ratio(water_type))
    peak = max(red, green, blue)

    def veil(v: float) -> float:
        return level * (0.15 + 0.85 * v / peak)

    return veil(red), veil(green), veil(blue)


@register_degradation("underwater", "underwater")
@dataclasses.dataclass(frozen=True)
class UnderwaterCast(Degradation):
    """Underwater appearance by the UWCNN image-formation model.

    Parameters (valid range; range drawn by :meth:`sample` in brackets):

    * ``water_type`` — Jerlov type, one of :data:`JERLOV_KD` (I–3C; severity shifts the draw
      towards the turbid end).
    * ``distance`` — farthest scene distance in metres, ``[0, 30]`` (``1–6``; UWCNN used
      0.5–15 m, we stay shorter because UIEB scenes are mostly close-range); the per-pixel
      distance is ``distance·(0.3 + 0.7·synthetic_depth)`` unless ``depth_map`` is given.
    * ``surface_depth`` — metres of water above the scene the light crosses, ``[0, 20]`` (``0–3``).
    * ``background`` — veiling light RGB in [0, 1]; ``None`` derives it from the water type
      (:func:`default_background` at level 0.75); ``sample`` draws the level in ``[0.55, 0.85]``
      and jitters each channel ±0.05.
    * ``depth_map`` — optional per-pixel distance in metres (``H×W``, ``B×H×W`` or ``B×1×H×W``);
      excluded from comparison, hashing and :meth:`params`.
    """

    water_type: str = "II"
    distance: float = 3.0
    surface_depth: float = 1.0
    background: tuple[float, float, float] | None = None
    depth_map: torch.Tensor | None = dataclasses.field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        residual_energy_ratio(self.water_type)  # validates
        if self.distance < 0 or self.surface_depth < 0:
            raise ValueError("distance and surface_depth must be ≥ 0")
        if self.background is not None:
            if len(self.background) != 3 or any(not 0.0 <= c <= 1.0 for c in self.background):
                raise ValueError(
                    f"background must be three values in [0, 1], got {self.background}"
                )
            object.__setattr__(self, "background", tuple(float(c) for c in self.background))

    @classmethod
    def sample(cls, severity: float, generator: torch.Generator) -> UnderwaterCast:
        """Distance, surface depth and turbidity grow with severity; veiling light is jittered."""
        s = min(max(float(severity), 0.0), 1.0)
        n = len(SAMPLED_WATER_TYPES)
        centre = s * (n - 1)
        idx = round(min(max(centre + uniform(generator, -2.0, 2.0), 0.0), n - 1))
        water = SAMPLED_WATER_TYPES[idx]
        distance = (1.0 + 5.0 * s) * uniform(generator, 0.85, 1.15)
        surface = 3.0 * s * uniform(generator, 0.7, 1.0)
        base = default_background(water, uniform(generator, 0.55, 0.85))

        def jitter(c: float) -> float:
            return min(max(c + uniform(generator, -0.05, 0.05), 0.0), 1.0)

        red, green, blue = base
        return cls(
            water_type=water,
            distance=distance,
            surface_depth=surface,
            background=(jitter(red), jitter(green), jitter(blue)),
        )

    def veiling_light(self) -> tuple[float, float, float]:
        """The background light ``B`` (RGB) used by :meth:`apply`."""
        return (
            self.background if self.background is not None else default_background(self.water_type)
        )

    def distance_map(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Per-pixel scene distance ``B×1×H×W`` in metres."""
        if self.depth_map is not None:
            return _depth_batch(self.depth_map, images)
        return self.distance * (0.3 + 0.7 * synthetic_depth(images, generator))

    def apply(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Render a ``B×3×H×W`` batch in [0, 1] as if seen underwater."""
        dev, dt = images.device, images.dtype
        n = torch.tensor(residual_energy_ratio(self.water_type), dtype=dt, device=dev).view(
            1, 3, 1, 1
        )
        d = self.distance_map(images, generator)
        t = n**d  # B×3×H×W transmission per channel
        e = n**self.surface_depth  # illumination reaching the scene
        bl = torch.tensor(self.veiling_light(), dtype=dt, device=dev).view(1, 3, 1, 1)
        return (images * e * t + bl * (1.0 - t)).clamp(0.0, 1.0)

    def params(self) -> dict[str, Any]:
        """Parameters as a plain dict (the depth map is reported only as given or not)."""
        out: dict[str, Any] = {"name": self.name}
        for f in dataclasses.fields(self):
            if f.name != "depth_map":
                out[f.name] = getattr(self, f.name)
        out["depth_map"] = "given" if self.depth_map is not None else None
        return out
