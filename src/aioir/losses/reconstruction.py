"""Pixel reconstruction losses.

UDAIR and PromptIR train with a plain L1 loss on the raw network output (no clamping of the
prediction); Charbonnier (a smooth L1, ``sqrt((x - y)² + ε²)``) is the Restormer/MPRNet variant.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["charbonnier_loss", "l1_loss"]


def l1_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Mean absolute error over all elements (``pred`` is *not* clamped, as the papers do)."""
    if pred.shape != target.shape:
        raise ValueError(f"l1_loss: shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}")
    return (pred - target).abs().mean()


def charbonnier_loss(pred: Tensor, target: Tensor, eps: float = 1e-3) -> Tensor:
    """Mean of ``sqrt((pred - target)² + eps²)`` (Charbonnier; MPRNet/Restormer use ε = 1e-3)."""
    if pred.shape != target.shape:
        raise ValueError(
            f"charbonnier_loss: shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}"
        )
    if eps <= 0:
        raise ValueError(f"charbonnier_loss: eps must be > 0, got {eps}")
    diff = pred - target
    return torch.sqrt(diff * diff + eps * eps).mean()
