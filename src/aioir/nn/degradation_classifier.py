"""A small convolutional classifier that names an image's degradation from the image alone.

:class:`DegradationClassifier` reads the input at full resolution (pixel noise vanishes in a
downscaled copy) through four stride-2 3×3 convolutions and pools each stage's activations
over the whole image: the first stages see pixel-level noise and blur, the last ones global
tone (haze, low light, colour cast). Each stage's mean activation and log mean square (its
energy) feed a small MLP that gives one logit per class. Its decision is per image: under a
tiled restoration it is pooled over the tiles (:mod:`aioir.nn.image_statistics`), so every
tile shares the whole image's.

It is trained on synthetic crops whose degradation is known (the label comes for free with the
synthesis), many thousands of them in minutes on a CPU — far more examples than a gate fitted
on restored crops ever sees — and so is a descriptor that generalises where features of a
restoration network, trained for something else, may not
(:mod:`aioir.engine.degradation_classifier`).

:class:`HighlightDegradationClassifier` also reads the input's highlights
(:func:`highlight_terms`): a stage's mean and energy dilute a few bright pixels into the whole
image, so a dark scene with one bright beam reads as under-exposed, while synthetic low light
scales every highlight down (a dark photo whose brightest pixels are near white was not
under-exposed). :class:`ShadowHighlightDegradationClassifier` reads its shadows too
(:func:`shadow_terms`), the mirror cue for bright scenes: haze lifts every shadow towards the
airlight, so a bright photo whose darkest pixels are near black was not hazy.
:class:`BandedShadowHighlightDegradationClassifier` reads the shadows of horizontal bands
as well (:func:`banded_shadow_terms`): haze grows with depth, and the far field of an outdoor
photo is its upper part, so a hazy photo's shadows are lifted more at the top than at the
bottom, while a pale or overcast scene that is its own target is lifted evenly — the one cue
that tells them apart which the image-wide statistics pool away.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from aioir.nn.image_statistics import image_statistic, pool_crops

__all__ = [
    "DEFAULT_HIDDEN",
    "DEFAULT_POWERS",
    "DEFAULT_WIDTHS",
    "BandedShadowHighlightDegradationClassifier",
    "DegradationClassifier",
    "HighlightDegradationClassifier",
    "ShadowHighlightDegradationClassifier",
    "banded_shadow_terms",
    "degradation_classifier",
    "highlight_terms",
    "shadow_terms",
]

#: a classifier's default stage widths and MLP width
DEFAULT_WIDTHS, DEFAULT_HIDDEN = (24, 48, 96, 128), 96
#: the tone variants' default powers (the highlight and shadow terms'): a mean, a soft and a
#: near-hard extreme
DEFAULT_POWERS = (8.0, 32.0, 128.0)


class DegradationClassifier(nn.Module):
    """Per-image class logits (B×K) of a B×3×H×W image in [0, 1].

    Args:
        classes: the class names, in logit order (saved with the weights' owner).
        widths: channels of the four stride-2 stages.
        hidden: width of the MLP on the pooled statistics.

    :attr:`last_logits` keeps the logits of the last images it classified (``B×K``).
    """

    image_statistics = True

    def __init__(
        self,
        classes: Sequence[str],
        widths: Sequence[int] = DEFAULT_WIDTHS,
        hidden: int = DEFAULT_HIDDEN,
    ) -> None:
        super().__init__()
        if len(classes) < 2:
            raise ValueError(f"a classifier needs at least two classes, got {list(classes)}")
        if len(widths) < 1 or min(widths) < 1:
            raise ValueError(f"widths must be positive, got {list(widths)}")
        self.classes = [str(c) for c in classes]
        stages, channels = [], 3
        for width in widths:
            stages.append(nn.Sequential(nn.Conv2d(channels, width, 3, stride=2, padding=1),
                                        nn.GELU()))  # fmt: skip
            channels = width
        self.stages = nn.ModuleList(stages)
        terms = 2 * sum(widths) + self.extra_terms
        self.head = nn.Sequential(
            nn.Linear(terms, hidden), nn.GELU(), nn.Linear(hidden, len(self.classes))
        )
        self.last_logits: Tensor | None = None

    @property
    def extra_terms(self) -> int:
        """Pooled terms a variant adds after the stages' (:meth:`pooled`)."""
        return 0

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def widths(self) -> list[int]:
        """Channels of the stages."""
        return [int(s[0].out_channels) for s in self.stages]

    @property
    def hidden(self) -> int:
        return int(self.head[0].out_features)

    def record(self) -> dict[str, Any]:
        """What :func:`degradation_classifier` rebuilds it from (its weights aside)."""
        return {"classes": list(self.classes), "widths": self.widths, "hidden": self.hidden}

    def pooled(self, x: Tensor) -> Tensor:
        """The per-image statistics the head reads, B×2·Σwidths: each stage's mean activation
        and the log of its mean square (its energy: noise and detail), pooled over the crops of
        a tiled image."""
        h = x.float() * 2.0 - 1.0
        means, squares = [], []
        for stage in self.stages:
            h = stage(h)
            means.append(h.mean(dim=(2, 3)))
            squares.append(h.pow(2).mean(dim=(2, 3)))
        mean, square = pool_crops(torch.cat(means, dim=1)), pool_crops(torch.cat(squares, dim=1))
        return torch.cat([mean, square.clamp(min=1e-8).log()], dim=1)

    def forward(self, x: Tensor) -> Tensor:
        """Class logits, B×K (a per-image decision)."""

        def compute() -> Tensor:
            logits = self.head(self.pooled(x))
            self.last_logits = logits.detach()
            return logits

        return image_statistic(self, x.shape[0], compute)


def _log_power_means(
    log_m: Tensor, powers: Sequence[float], rows: Tensor | None = None
) -> list[Tensor]:
    """``log(mean(m^p))`` per image (B) for each of ``powers``, from ``log m`` (B×H×W), over
    every pixel or over the rows where ``rows`` (H, bool) is true; in the log domain."""
    if rows is None:
        flat, log_count = log_m.flatten(1), math.log(log_m.shape[1] * log_m.shape[2])
        return [torch.logsumexp(float(p) * flat, dim=1) - log_count for p in powers]
    log_count = (rows.float().sum() * torch.ones_like(log_m[0, 0, :]).sum()).log()
    inside = rows[None, :, None]
    return [
        torch.logsumexp(torch.where(inside, float(p) * log_m, float("-inf")).flatten(1), dim=1)
        - log_count
        for p in powers
    ]


def _log_brightest(x: Tensor) -> Tensor:
    """``log m`` (B×H×W) of each pixel's brightest channel ``m``, floored at 1/1024."""
    return x.float().amax(dim=1).clamp(1.0 / 1024, 1.0).log()


def _pooled_power_means(log_means: list[Tensor], powers: Sequence[float]) -> Tensor:
    """The log power means (one B tensor per term, cycling through ``powers``) stacked to
    B×terms, pooled over the crops of a tiled image and divided by their powers."""
    scale = torch.tensor([float(p) for p in powers], device=log_means[0].device)
    stacked = torch.stack(log_means, dim=1)
    return pool_crops(stacked, reduce="logmeanexp") / scale.repeat(len(log_means) // len(powers))


def highlight_terms(x: Tensor, powers: Sequence[float]) -> Tensor:
    """B×len(powers): ``log(mean(m^p)) / p`` of each image's brightest channel ``m`` (a power
    mean on a log scale: near ``log max m`` for a large ``p`` — how bright its highlights are
    — and near the log of the mean for a small one), pooled over the crops of a tiled image.
    Computed in the log domain (``0.08^128`` underflows float32); ``m`` is floored at 1/1024."""
    with torch.autocast(x.device.type, enabled=False):
        return _pooled_power_means(_log_power_means(_log_brightest(x), powers), powers)


def shadow_terms(x: Tensor, powers: Sequence[float]) -> Tensor:
    """B×len(powers): :func:`highlight_terms` of the negative ``1 − x`` — the power means of
    ``1 − d``, with ``d`` each pixel's darkest channel: near ``log(1 − min d)`` for a large
    ``p`` (how black its shadows are; haze lifts them to the airlight's share), pooled over the
    crops of a tiled image towards its darkest crop."""
    return highlight_terms(1.0 - x, powers)


def banded_shadow_terms(x: Tensor, powers: Sequence[float], bands: int) -> Tensor:
    """B×(bands·len(powers)): :func:`shadow_terms` of each of ``bands`` horizontal bands, top
    to bottom (band-major; row ``r`` of ``H`` is in band ``⌊r·bands/H⌋``), each pooled over the
    crops of a tiled image as :func:`shadow_terms` is. The bands are masks computed from the
    input's height, so a traced export follows the height it is given. Needs ``H ≥ bands``."""
    if isinstance(x.shape[-2], int) and x.shape[-2] < bands:
        raise ValueError(f"an image {x.shape[-2]} px high has fewer rows than {bands} bands")
    with torch.autocast(x.device.type, enabled=False):
        log_m = _log_brightest(1.0 - x)  # B×H×W
        ones_down = torch.ones_like(log_m[0, :, 0])
        band = torch.floor((ones_down.cumsum(0) - 1.0) * bands / ones_down.sum())  # H
        log_means = [t for k in range(bands) for t in _log_power_means(log_m, powers, band == k)]
        return _pooled_power_means(log_means, powers)


def _positive_powers(name: str, powers: Sequence[float]) -> list[float]:
    """``powers`` as floats; a ``ValueError`` naming ``name`` when empty or not all positive."""
    if not powers or min(powers) <= 0:
        raise ValueError(f"{name} must be positive, got {list(powers)}")
    return [float(p) for p in powers]


class HighlightDegradationClassifier(DegradationClassifier):
    """A :class:`DegradationClassifier` whose head also reads :func:`highlight_terms` at
    ``highlight_powers`` (module docstring)."""

    def __init__(
        self,
        classes: Sequence[str],
        widths: Sequence[int] = DEFAULT_WIDTHS,
        hidden: int = DEFAULT_HIDDEN,
        highlight_powers: Sequence[float] = DEFAULT_POWERS,
    ) -> None:
        # the head's size depends on them: set before the base class sizes it
        self.highlight_powers = _positive_powers("highlight_powers", highlight_powers)
        super().__init__(classes, widths, hidden)

    @property
    def extra_terms(self) -> int:
        return len(self.highlight_powers)

    def record(self) -> dict[str, Any]:
        return {**super().record(), "highlight_powers": list(self.highlight_powers)}

    def pooled(self, x: Tensor) -> Tensor:
        """The stages' statistics, then :func:`highlight_terms`."""
        return torch.cat([super().pooled(x), highlight_terms(x, self.highlight_powers)], dim=1)


class ShadowHighlightDegradationClassifier(HighlightDegradationClassifier):
    """A :class:`HighlightDegradationClassifier` whose head also reads :func:`shadow_terms` at
    ``shadow_powers`` (module docstring)."""

    def __init__(
        self,
        classes: Sequence[str],
        widths: Sequence[int] = DEFAULT_WIDTHS,
        hidden: int = DEFAULT_HIDDEN,
        highlight_powers: Sequence[float] = DEFAULT_POWERS,
        shadow_powers: Sequence[float] = DEFAULT_POWERS,
    ) -> None:
        self.shadow_powers = _positive_powers("shadow_powers", shadow_powers)
        super().__init__(classes, widths, hidden, highlight_powers)

    @property
    def extra_terms(self) -> int:
        return super().extra_terms + len(self.shadow_powers)

    def record(self) -> dict[str, Any]:
        return {**super().record(), "shadow_powers": list(self.shadow_powers)}

    def pooled(self, x: Tensor) -> Tensor:
        """The stages' statistics, :func:`highlight_terms`, then :func:`shadow_terms`."""
        return torch.cat([super().pooled(x), shadow_terms(x, self.shadow_powers)], dim=1)


class BandedShadowHighlightDegradationClassifier(ShadowHighlightDegradationClassifier):
    """A :class:`ShadowHighlightDegradationClassifier` whose head also reads the shadows of
    ``shadow_bands`` horizontal bands (:func:`banded_shadow_terms`, at ``shadow_powers``;
    module docstring). Arguments: the parent's, and ``shadow_bands`` (keyword)."""

    def __init__(self, *args: Any, shadow_bands: int = 3, **kwargs: Any) -> None:
        if isinstance(shadow_bands, bool) or not isinstance(shadow_bands, int) or shadow_bands < 2:
            raise ValueError(f"shadow_bands must be an integer ≥ 2, got {shadow_bands!r}")
        self.shadow_bands = shadow_bands
        super().__init__(*args, **kwargs)

    @property
    def extra_terms(self) -> int:
        return super().extra_terms + self.shadow_bands * len(self.shadow_powers)

    def record(self) -> dict[str, Any]:
        return {**super().record(), "shadow_bands": self.shadow_bands}

    def pooled(self, x: Tensor) -> Tensor:
        """The image-wide statistics, then :func:`banded_shadow_terms`."""
        bands = banded_shadow_terms(x, self.shadow_powers, self.shadow_bands)
        return torch.cat([super().pooled(x), bands], dim=1)


def degradation_classifier(
    classes: Sequence[str],
    widths: Sequence[int] = DEFAULT_WIDTHS,
    hidden: int = DEFAULT_HIDDEN,
    highlight_powers: Sequence[float] = (),
    shadow_powers: Sequence[float] = (),
    shadow_bands: int = 0,
) -> DegradationClassifier:
    """The classifier these describe (random weights): a
    :class:`HighlightDegradationClassifier` when ``highlight_powers`` are given, a
    :class:`ShadowHighlightDegradationClassifier` when ``shadow_powers`` are too, a
    :class:`BandedShadowHighlightDegradationClassifier` when ``shadow_bands`` is also ≥ 2 (the
    keys of :meth:`DegradationClassifier.record`)."""
    if shadow_bands:
        if not shadow_powers:
            raise ValueError("shadow_bands come with shadow_powers (the bands' powers)")
        return BandedShadowHighlightDegradationClassifier(
            classes, widths, hidden, highlight_powers, shadow_powers, shadow_bands=shadow_bands
        )
    if shadow_powers:
        if not highlight_powers:
            raise ValueError("shadow_powers come with highlight_powers (a classifier reads both)")
        return ShadowHighlightDegradationClassifier(
            classes, widths, hidden, highlight_powers, shadow_powers
        )
    if highlight_powers:
        return HighlightDegradationClassifier(classes, widths, hidden, highlight_powers)
    return DegradationClassifier(classes, widths, hidden)
