"""Adaptive gamma as a parameter-free PyTorch module (:class:`AdaptiveGamma`).

One exponent per image, ``γ = ln target / ln μ`` with ``μ`` the mean BT.601 luma, raised on
every RGB channel: the mean-to-0.5 rule of ImageMagick's ``-auto-gamma`` — the classical
comparator :func:`aioir.evaluate.classical.adaptive_gamma`, to which a test holds it. The
exponent is a per-image decision (:mod:`aioir.nn.image_statistics`): the tiles of a tiled
restoration share the whole image's, so a large photo is not brightened tile by tile.

Why it is here: the default model's filter-bank head can offer it as a candidate (an expert,
:mod:`aioir.models.filter_bank`) and mix it with the network's output where the network
exposes a dark photo too little or too much. The ``brighten`` preset never darkens (``γ ≤ 1``:
an image whose mean is already over the target comes back as it is), so a bright photo read
as under-exposed loses nothing to it. As a model of its own (``aioir restore --model
adaptive-gamma``) it is the classical method.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from aioir.color import BT601_LUMA
from aioir.models.registry import Preset, register_presets
from aioir.nn.image_statistics import image_statistic, pool_crops

__all__ = ["ADAPTIVE_GAMMA_PRESETS", "AdaptiveGamma"]


class AdaptiveGamma(nn.Module):
    """``x^γ`` with one exponent per image that maps its mean luma to ``target``.

    Args:
        target: the mean luma the exponent maps the image's to, in (0, 1).
        eps: the image's mean is clipped to ``[eps, 1 − eps]`` (a black or white image).
        brighten_only: cap the exponent at 1, so the image is brightened or left as it is,
            never darkened.
    """

    size_multiple: int = 1
    #: the exponent is a per-image decision (:mod:`aioir.nn.image_statistics`)
    image_statistics = True

    def __init__(self, target: float = 0.5, eps: float = 1e-3, brighten_only: bool = False) -> None:
        super().__init__()
        if not 0.0 < target < 1.0:
            raise ValueError(f"target mean must lie in (0, 1), got {target}")
        if not 0.0 < eps < 0.5:
            raise ValueError(f"eps must lie in (0, 0.5), got {eps}")
        self.target, self.eps, self.brighten_only = target, eps, brighten_only
        self.register_buffer("luma", torch.tensor(BT601_LUMA).view(1, 3, 1, 1), persistent=False)

    def exponent(self, images: Tensor) -> Tensor:
        """Each image's ``γ`` (B×1×1×1) from its mean luma (pooled over the crops of a
        recording pass)."""
        luma = (images * self.luma.to(images)).sum(dim=1, keepdim=True)
        mean = pool_crops(luma.mean(dim=(2, 3), keepdim=True)).clamp(self.eps, 1.0 - self.eps)
        gamma = math.log(self.target) / mean.log()
        return gamma.clamp(max=1.0) if self.brighten_only else gamma

    def forward(self, x: Tensor) -> Tensor:
        """Correct ``x`` (B×3×H×W in [0, 1], any size); returns the same shape."""
        images = x.clamp(0.0, 1.0)
        gamma = image_statistic(self, images.shape[0], lambda: self.exponent(images))
        return images.pow(gamma).clamp(0.0, 1.0)


ADAPTIVE_GAMMA_PRESETS: dict[str, Preset] = {
    "paper": Preset(
        {},
        parameters=0,
        description="adaptive gamma: one exponent mapping the mean luma to 0.5 (ImageMagick's "
        "-auto-gamma rule on all channels at once; classical, no weights)",
        inference_bytes_per_pixel=45,  # restore_large.py --bytes-per-pixel --threads 1
    ),
    "brighten": Preset(
        {"brighten_only": True},
        parameters=0,
        description="adaptive gamma that only brightens (γ ≤ 1: a photo brighter than mid-grey "
        "is left as it is); a candidate of the default model's filter-bank head",
        inference_bytes_per_pixel=45,  # restore_large.py --bytes-per-pixel --threads 1
    ),
}

register_presets("adaptive-gamma", AdaptiveGamma, ADAPTIVE_GAMMA_PRESETS)
