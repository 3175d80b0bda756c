"""Pad an image batch to a size multiple (reflect) and crop it back."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

__all__ = ["pad_to_multiple", "unpad"]


def pad_to_multiple(x: Tensor, multiple: int) -> tuple[Tensor, tuple[int, int]]:
    """Pad ``B×C×H×W`` at the bottom/right so H and W are multiples of ``multiple``.

    Reflect padding where the image is large enough (pad < side), replicate otherwise (tiny
    inputs). Returns the padded tensor and the original ``(H, W)`` for :func:`unpad`.
    """
    h, w = x.shape[-2:]
    ph = (-h) % multiple
    pw = (-w) % multiple
    if ph == 0 and pw == 0:
        return x, (h, w)
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode), (h, w)


def unpad(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Crop the top-left ``size = (H, W)`` of a padded ``B×C×H'×W'`` tensor."""
    h, w = size
    if x.shape[-2] == h and x.shape[-1] == w:
        return x
    return x[..., :h, :w]
