"""Paired random crops and flips/rotations on ``C×H×W`` tensors.

Every function takes a *list* of images (e.g. ``[degraded, clean]``) and applies the **same**
random transform to all of them, with all randomness drawn from a ``torch.Generator``.

Images smaller than the crop are bicubic-upscaled (keeping the aspect ratio) until both sides
fit, as UDAIR's loaders do, instead of being reflect-padded: padding would teach the network
mirrored borders that never occur in real inputs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F

from aioir.color import BT601_LUMA
from aioir.geometry import apply_d8

__all__ = [
    "DARK_LOOK",
    "DEFOCUS_RADIUS",
    "HIGH_KEY_LOOK",
    "PALE_LOOK",
    "apply_d8",
    "dark_jitter",
    "dark_rendering",
    "defocus_jitter",
    "defocus_rendering",
    "ensure_min_size",
    "grey_jitter",
    "grey_rendering",
    "high_key_jitter",
    "high_key_rendering",
    "low_key_jitter",
    "low_key_rendering",
    "pale_jitter",
    "pale_rendering",
    "photometric_jitter",
    "random_crop",
    "random_crop_box",
    "random_flip_rotate",
    "white_balance_jitter",
]


def _pair(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, int):
        h, w = size, size
    else:
        h, w = (int(s) for s in size)
    if h < 1 or w < 1:
        raise ValueError(f"crop size must be positive, got {size}")
    return h, w


def _check_same_size(images: Sequence[torch.Tensor]) -> tuple[int, int]:
    if not images:
        raise ValueError("expected at least one image")
    shapes = {tuple(img.shape[-2:]) for img in images}
    if len(shapes) != 1:
        raise ValueError(f"paired images must share H×W, got {sorted(shapes)}")
    h, w = shapes.pop()
    return int(h), int(w)


def ensure_min_size(image: torch.Tensor, size: int | Sequence[int]) -> torch.Tensor:
    """Bicubic-upscale ``image`` (``…×H×W``), keeping its aspect ratio, until H, W ≥ ``size``.

    Images already large enough are returned unchanged. Floating-point results are clamped to the
    input's value range (bicubic overshoots); integer images (e.g. label maps) use nearest.
    """
    th, tw = _pair(size)
    h, w = int(image.shape[-2]), int(image.shape[-1])
    if h >= th and w >= tw:
        return image
    scale = max(th / h, tw / w)
    nh, nw = max(th, math.ceil(h * scale - 1e-6)), max(tw, math.ceil(w * scale - 1e-6))
    lead = image.shape[:-2]
    flat = image.reshape(1, -1, h, w)
    if image.is_floating_point():
        out = F.interpolate(flat, size=(nh, nw), mode="bicubic", align_corners=False)
        out = out.clamp_(float(image.min()), float(image.max()))
    else:
        out = F.interpolate(flat.float(), size=(nh, nw), mode="nearest").to(image.dtype)
    return out.reshape(*lead, nh, nw)


def random_crop_box(
    height: int, width: int, size: int | Sequence[int], generator: torch.Generator
) -> tuple[int, int]:
    """A uniformly random top-left corner ``(top, left)`` of a ``size`` crop in ``height×width``."""
    th, tw = _pair(size)
    if th > height or tw > width:
        raise ValueError(f"crop {th}×{tw} does not fit in {height}×{width}")
    top = int(torch.randint(0, height - th + 1, (), generator=generator))
    left = int(torch.randint(0, width - tw + 1, (), generator=generator))
    return top, left


def random_crop(
    images: Sequence[torch.Tensor], size: int | Sequence[int], generator: torch.Generator
) -> list[torch.Tensor]:
    """The same random ``size`` crop of every image in ``images`` (all ``C×H×W``, same H×W).

    Images smaller than the crop are first bicubic-upscaled (:func:`ensure_min_size`).
    """
    _check_same_size(images)
    th, tw = _pair(size)
    images = [ensure_min_size(img, (th, tw)) for img in images]
    h, w = _check_same_size(images)
    top, left = random_crop_box(h, w, (th, tw), generator)
    return [img[..., top : top + th, left : left + tw] for img in images]


def random_flip_rotate(
    images: Sequence[torch.Tensor],
    generator: torch.Generator,
    mode: Literal["d8", "udair"] = "d8",
) -> list[torch.Tensor]:
    """The same random flip/rotation of every image.

    * ``"d8"``: one of the 8 flips/rotations of the square, uniformly (PromptIR/AirNet style);
    * ``"udair"``: top-bottom flip p=.5, then left-right flip p=.5, then 180° rotation p=.5
      (UDAIR's loader; the three draws are always made).
    """
    _check_same_size(images)
    if mode == "d8":
        k = int(torch.randint(0, 8, (), generator=generator))
        return [apply_d8(img, k) for img in images]
    if mode == "udair":
        tb, lr, rot = (bool(b) for b in (torch.rand(3, generator=generator) < 0.5))
        out = list(images)
        if tb:
            out = [img.flip(-2) for img in out]
        if lr:
            out = [img.flip(-1) for img in out]
        if rot:
            out = [torch.rot90(img, 2, dims=(-2, -1)) for img in out]
        return out
    raise ValueError(f"unknown flip/rotate mode {mode!r}; expected 'd8' or 'udair'")


def _jitter_draws(
    strength: float, generator: torch.Generator, n: int, what: str
) -> tuple[float, list[float]]:
    """``(strength, n uniform draws)`` of a clean-patch jitter; no draws at strength 0."""
    s = float(strength)
    if not 0.0 <= s <= 1.0:
        raise ValueError(f"{what} strength must lie in [0, 1], got {strength}")
    if s == 0.0:
        return s, []
    return s, torch.rand(n, generator=generator, dtype=torch.float64).tolist()


def photometric_jitter(
    images: torch.Tensor, generator: torch.Generator, strength: float
) -> torch.Tensor:
    """Random exposure (gamma), contrast and saturation change of *clean* ``B×3×H×W`` images.

    Applied to the clean photo before it is degraded, so input and target share it: the model
    meets bright, flat or desaturated scenes whose target is themselves, and learns that those
    looks alone are not haze or a colour cast. ``strength`` in [0, 1] scales every range
    (0 = unchanged, no random draws): gamma ``exp(U(−0.6, 0.6)·s)``, contrast about the image
    mean ``1 + U(−0.5, 0.25)·s``, saturation about the luma ``1 + U(−0.6, 0.3)·s``; the result
    is clipped to [0, 1]. One draw per call (the whole batch shares it).
    """
    s, u = _jitter_draws(strength, generator, 3, "photometric")
    if s == 0.0:
        return images
    gamma = math.exp((-0.6 + 1.2 * u[0]) * s)
    contrast = 1.0 + (-0.5 + 0.75 * u[1]) * s
    saturation = 1.0 + (-0.6 + 0.9 * u[2]) * s
    x = images.clamp(0.0, 1.0).pow(gamma)
    mean = x.mean(dim=(-3, -2, -1), keepdim=True)
    x = mean + contrast * (x - mean)
    return _scale_saturation(x, saturation).clamp(0.0, 1.0)


def _luma(x: torch.Tensor) -> torch.Tensor:
    """The BT.601 luma of ``B×3×H×W`` images, ``B×1×H×W``."""
    weights = torch.tensor(BT601_LUMA, dtype=x.dtype, device=x.device)
    return (x * weights.view(3, 1, 1)).sum(dim=-3, keepdim=True)


def _scale_saturation(x: torch.Tensor, factor: float) -> torch.Tensor:
    """``B×3×H×W`` colours moved towards (factor < 1) or away from their BT.601 luma."""
    luma = _luma(x)
    return luma + factor * (x - luma)


#: :func:`pale_rendering`'s default look: a bright, flat, almost grey photo
#: (the look of the demo's blurred clock, ``greentock``: grey mean 0.67, saturation 0.06)
PALE_LOOK = {"saturation": 0.15, "contrast": 0.45, "mean": 0.67}


def pale_rendering(
    images: torch.Tensor,
    saturation: float = PALE_LOOK["saturation"],
    contrast: float = PALE_LOOK["contrast"],
    mean: float = PALE_LOOK["mean"],
) -> torch.Tensor:
    """``B×3×H×W`` clean images rendered pale and flat (default: :data:`PALE_LOOK`): colour
    scaled towards the luma by ``saturation``, contrast about the image mean scaled by
    ``contrast``, then the mean moved to ``mean``; clipped to [0, 1]. An overcast, over-exposed
    or misty-looking photo whose target is itself — the look that a haze detector mistakes for
    haze."""
    x = _scale_saturation(images.clamp(0.0, 1.0), saturation)
    centre = x.mean(dim=(-3, -2, -1), keepdim=True)
    return (mean + contrast * (x - centre)).clamp(0.0, 1.0)


def pale_jitter(
    images: torch.Tensor, generator: torch.Generator, probability: float
) -> torch.Tensor:
    """With ``probability``, :func:`pale_rendering` of *clean* ``B×3×H×W`` images at a random
    look (saturation ``U(0.05, 0.5)``, contrast ``U(0.3, 0.7)``, mean ``U(0.55, 0.8)``);
    otherwise unchanged. Applied before degrading, so input and target share it: the model
    meets pale scenes that are their own target, and learns that paleness alone is not haze.
    Four draws whenever ``probability`` > 0 (none at 0); one decision per call."""
    p, u = _jitter_draws(probability, generator, 4, "pale")
    if p == 0.0 or u[0] >= p:
        return images
    return pale_rendering(
        images, saturation=0.05 + 0.45 * u[1], contrast=0.3 + 0.4 * u[2], mean=0.55 + 0.25 * u[3]
    )


#: :func:`high_key_rendering`'s default look: a bright, near-white scene that keeps its
#: darkest accents (a white object on a white wall, an over-exposed snow or studio shot)
HIGH_KEY_LOOK = {"gamma": 3.0, "saturation": 0.3}


def high_key_rendering(
    images: torch.Tensor,
    gamma: float = HIGH_KEY_LOOK["gamma"],
    saturation: float = HIGH_KEY_LOOK["saturation"],
) -> torch.Tensor:
    """``B×3×H×W`` clean images rendered high-key (default: :data:`HIGH_KEY_LOOK`): colour
    scaled towards the luma by ``saturation``, then the tone curve ``1 − (1 − x)^gamma``, which
    lifts the mid-tones towards white and compresses the highlights but keeps black black and
    every edge sharp; clipped to [0, 1]. A bright, washed-out photo whose target is itself —
    pale like haze, but with the dark accents that haze would lift (the pale rendering squeezes
    every tone about a mean; this one keeps the shadows' detail)."""
    x = _scale_saturation(images.clamp(0.0, 1.0), saturation).clamp(0.0, 1.0)
    return (1.0 - (1.0 - x).pow(float(gamma))).clamp(0.0, 1.0)


def high_key_jitter(
    images: torch.Tensor, generator: torch.Generator, probability: float
) -> torch.Tensor:
    """With ``probability``, :func:`high_key_rendering` of *clean* ``B×3×H×W`` images at a
    random look (gamma ``U(2, 4)``, saturation ``U(0.1, 1)``); otherwise unchanged. Applied
    before degrading, so input and target share it: the model meets bright, near-white scenes
    that are their own target, and learns that brightness alone is not haze. Three draws
    whenever ``probability`` > 0 (none at 0); one decision per call."""
    p, u = _jitter_draws(probability, generator, 3, "high_key")
    if p == 0.0 or u[0] >= p:
        return images
    return high_key_rendering(images, gamma=2.0 + 2.0 * u[1], saturation=0.1 + 0.9 * u[2])


def grey_rendering(images: torch.Tensor) -> torch.Tensor:
    """``B×3×H×W`` images as a black-and-white photo: every channel set to the BT.601 luma,
    as a greyscale file loads (and as ``aioir restore`` hands one to a model)."""
    return _luma(images).expand_as(images).contiguous()


def grey_jitter(
    images: torch.Tensor, generator: torch.Generator, probability: float
) -> tuple[torch.Tensor, bool]:
    """With ``probability``, :func:`grey_rendering` of *clean* ``B×3×H×W`` images, and whether
    it was drawn: the caller renders the degraded image grey too, so noise, grain and the rest
    come out as a greyscale file holds them (one value per pixel, the same in every channel),
    which a denoiser trained on colour noise takes for texture. One draw whenever
    ``probability`` > 0 (none at 0)."""
    p, u = _jitter_draws(probability, generator, 1, "grey")
    if p == 0.0 or u[0] >= p:
        return images, False
    return grey_rendering(images), True


#: :func:`low_key_rendering`'s default look: a dark scene exposed for its highlights
#: (the bar's dark wallpaper: mean 0.09, its brightest percent above 0.46)
LOW_KEY_LOOK = {"gamma": 3.0}


def low_key_rendering(images: torch.Tensor, gamma: float = LOW_KEY_LOOK["gamma"]) -> torch.Tensor:
    """``B×3×H×W`` clean images rendered low-key (default: :data:`LOW_KEY_LOOK`): the tone
    curve ``x^gamma``, which sinks the mid-tones towards black but keeps white white (the
    mirror of :func:`high_key_rendering`); clipped to [0, 1]. A night or low-key photo exposed
    for its highlights, whose target is itself — dark like under-exposure, but with the
    highlights that under-exposure would have dimmed (:func:`dark_rendering` scales them down
    with the rest, as under-exposure does)."""
    return images.clamp(0.0, 1.0).pow(float(gamma))


def low_key_jitter(
    images: torch.Tensor, generator: torch.Generator, probability: float
) -> torch.Tensor:
    """With ``probability``, :func:`low_key_rendering` of *clean* ``B×3×H×W`` images at a
    random look (gamma ``U(2, 4)``); otherwise unchanged. Applied before degrading, so input
    and target share it: the model meets dark scenes with bright accents that are their own
    target, and learns that a dark photo with highlights is not under-exposed. Two draws
    whenever ``probability`` > 0 (none at 0); one decision per call."""
    p, u = _jitter_draws(probability, generator, 2, "low_key")
    if p == 0.0 or u[0] >= p:
        return images
    return low_key_rendering(images, gamma=2.0 + 2.0 * u[1])


#: :func:`dark_rendering`'s default look: a dim scene (the bar's night-fog trees:
#: mean 0.17; its dark wallpaper: 0.09)
DARK_LOOK = {"mean": 0.12, "gamma": 1.5}


def dark_rendering(
    images: torch.Tensor, mean: float = DARK_LOOK["mean"], gamma: float = DARK_LOOK["gamma"]
) -> torch.Tensor:
    """``B×3×H×W`` clean images rendered dark: a gamma curve ``x^gamma`` (shadows deepen more
    than highlights), then every image's exposure scaled so its mean is ``mean``; clipped to
    [0, 1]. A night or dusk photo whose target is itself — the look that a low-light
    enhancer mistakes for under-exposure and brightens."""
    x = images.clamp(0.0, 1.0).pow(float(gamma))
    level = x.mean(dim=(-3, -2, -1), keepdim=True).clamp_min(1e-6)
    return (x * (float(mean) / level)).clamp(0.0, 1.0)


def dark_jitter(
    images: torch.Tensor, generator: torch.Generator, probability: float
) -> torch.Tensor:
    """With ``probability``, :func:`dark_rendering` of *clean* ``B×3×H×W`` images at a random
    look (mean ``U(0.05, 0.25)``, gamma ``U(1, 2)``); otherwise unchanged. Applied before
    degrading, so input and target share it: the model meets dim scenes that are their own
    target, and learns that darkness alone is not low light. Three draws whenever
    ``probability`` > 0 (none at 0); one decision per call."""
    p, u = _jitter_draws(probability, generator, 3, "dark")
    if p == 0.0 or u[0] >= p:
        return images
    return dark_rendering(images, mean=0.05 + 0.2 * u[1], gamma=1.0 + u[2])


#: :func:`defocus_rendering`'s default radius in pixels (a lens's circle of confusion)
DEFOCUS_RADIUS = 4.0


def defocus_rendering(
    images: torch.Tensor, radius: float = DEFOCUS_RADIUS, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """``B×3×H×W`` clean images rendered out of focus: blurred by an anti-aliased disk of
    ``radius`` pixels (:func:`aioir.degradations.blur.disk_kernel`, a lens's defocus) and
    blended with the sharp image by ``mask`` (``B×1×H×W`` or ``1×1×H×W`` in [0, 1], 1 = out of
    focus; ``None``: the whole frame). A shallow depth of field whose target is itself — the
    look that a deblurring network mistakes for blur and "sharpens" into invented detail."""
    from aioir.degradations.blur import apply_kernel, disk_kernel

    blurred = apply_kernel(images.clamp(0.0, 1.0), disk_kernel(float(radius))).clamp(0.0, 1.0)
    if mask is None:
        return blurred
    return torch.lerp(images.clamp(0.0, 1.0), blurred, mask.clamp(0.0, 1.0))


def defocus_jitter(
    images: torch.Tensor, generator: torch.Generator, probability: float
) -> torch.Tensor:
    """With ``probability``, :func:`defocus_rendering` of *clean* ``B×3×H×W`` images at a
    radius ``U(1, 8)`` px; otherwise unchanged. Half of the rendered patches are out of focus
    in the whole frame, the other half along a depth ramp (sharp on one side, blurred on the
    other: ``mask = clip((u − o)/w + ½, 0, 1)`` with ``u`` the position along a random direction
    in units of the patch side, ``o ~ U(−½, ½)``, ``w ~ U(0.1, 1)``). Applied before degrading,
    so input and target share it: the model meets bokeh that is its own target, and learns that
    smoothness alone is not blur. Six draws whenever ``probability`` > 0 (none at 0); one
    decision per call."""
    p, u = _jitter_draws(probability, generator, 6, "defocus")
    if p == 0.0 or u[0] >= p:
        return images
    radius = 1.0 + 7.0 * u[1]
    if u[2] < 0.5:
        return defocus_rendering(images, radius)
    h, w = images.shape[-2:]
    side = float(max(h, w))
    angle = 2.0 * math.pi * u[3]
    ys = torch.arange(h, dtype=images.dtype, device=images.device).view(h, 1) / side
    xs = torch.arange(w, dtype=images.dtype, device=images.device).view(1, w) / side
    along = xs * math.cos(angle) + ys * math.sin(angle)
    along = along - along.mean()
    mask = ((along - (u[4] - 0.5)) / (0.1 + 0.9 * u[5]) + 0.5).clamp(0.0, 1.0)
    return defocus_rendering(images, radius, mask[None, None])


def white_balance_jitter(
    images: torch.Tensor, generator: torch.Generator, strength: float
) -> torch.Tensor:
    """Random white-balance change (colour temperature and tint) of *clean* ``B×3×H×W`` images.

    The companion of :func:`photometric_jitter` for colour: applied to the clean photo before it
    is degraded, so input and target share it, and the model learns that a warm, cool, green or
    magenta scene is its own target (a natural colour cast is not an underwater cast or haze's
    airlight). ``strength`` in [0, 1] scales both ranges (0 = unchanged, no random draws): a
    temperature ``t = U(−0.25, 0.25)·s`` multiplies red by ``exp(t)`` and blue by ``exp(−t)``, a
    tint ``m = U(−0.12, 0.12)·s`` multiplies green by ``exp(m)``; the three gains are divided by
    their luma-weighted mean (brightness is kept) and the result is clipped to [0, 1]. One draw
    per call (the whole batch shares it).
    """
    s, u = _jitter_draws(strength, generator, 2, "white-balance")
    if s == 0.0:
        return images
    temperature = (-0.25 + 0.5 * u[0]) * s
    tint = (-0.12 + 0.24 * u[1]) * s
    gains = [math.exp(temperature), math.exp(tint), math.exp(-temperature)]
    wr, wg, wb = BT601_LUMA
    norm = wr * gains[0] + wg * gains[1] + wb * gains[2]
    scale = torch.tensor([g / norm for g in gains], dtype=images.dtype, device=images.device)
    return (images.clamp(0.0, 1.0) * scale.view(3, 1, 1)).clamp(0.0, 1.0)
