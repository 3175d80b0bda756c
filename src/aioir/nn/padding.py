"""Reflect padding that falls back to replicate on small images; size multiples and cropping back."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

__all__ = ["pad_to_multiple", "reflect_pad", "unpad"]


def reflect_pad(x: Tensor, pad: tuple[int, int, int, int]) -> Tensor:
    """``F.pad(x, pad)`` (left, right, top, bottom) with reflect padding where the image is
    large enough (every pad < its side), replicate otherwise (tiny inputs)."""
    left, right, top, bottom = pad
    h, w = x.shape[-2:]
    mode = "reflect" if max(left, right) < w and max(top, bottom) < h else "replicate"
    return F.pad(x, pad, mode=mode)


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
    return reflect_pad(x, (0, pw, 0, ph)), (h, w)


def unpad(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Crop the top-left ``size = (H, W)`` of a padded ``B×C×H'×W'`` tensor."""
    h, w = size
    if x.shape[-2] == h and x.shape[-1] == w:
        return x
    return x[..., :h, :w]
