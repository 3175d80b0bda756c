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
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from aioir.nn.image_statistics import image_statistic, pool_crops

__all__ = ["DegradationClassifier"]


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
        self, classes: Sequence[str], widths: Sequence[int] = (24, 48, 96, 128), hidden: int = 96
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
        self.head = nn.Sequential(
            nn.Linear(2 * sum(widths), hidden), nn.GELU(), nn.Linear(hidden, len(self.classes))
        )
        self.last_logits: Tensor | None = None

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
