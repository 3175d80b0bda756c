"""Pixel reconstruction losses.

UDAIR and PromptIR train with a plain L1 loss on the raw network output (no clamping of the
prediction); Charbonnier (a smooth L1, ``sqrt((x - y)² + ε²)``) is the Restormer/MPRNet variant.
The frequency loss (L1 between the real and imaginary parts of the 2-D FFTs, MIMO-UNet's
"FFT loss", used by AdaIR and other all-in-one restorers) rewards getting high frequencies right,
which a pixel L1 alone leaves to last: it is what teaches a restorer to sharpen. The mean-colour
loss (L1 between the per-channel means of each image) does the same for the other end of the
spectrum: a small uniform tint or brightness offset, which the pixel L1 barely sees under larger
local errors, costs several dB on a flat, nearly clean photo. The PSNR loss (NAFNet's
``PSNRLoss``: each image's ``10·log10(MSE + ε)``, averaged) is scale-free per image: halving a
low-light image's error and halving a noisy image's error earn the same, where an L1 lets the
tasks with large errors (low light, haze) drown the ones with small errors (noise, blur, clean).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

__all__ = [
    "Reduction",
    "charbonnier_loss",
    "fft_l1_loss",
    "l1_loss",
    "mean_color_loss",
    "psnr_loss",
]

#: ``"mean"``: one scalar over the whole batch; ``"sample"``: a ``B`` vector, each sample's mean
#: (the batch mean of which is the ``"mean"`` value, every sample having the same size).
Reduction = Literal["mean", "sample"]


def _reduce(values: Tensor, reduction: Reduction, name: str) -> Tensor:
    if reduction == "mean":
        return values.mean()
    if reduction == "sample":
        return values.flatten(1).mean(dim=1)
    raise ValueError(f"{name}: reduction must be 'mean' or 'sample', got {reduction!r}")


def l1_loss(pred: Tensor, target: Tensor, reduction: Reduction = "mean") -> Tensor:
    """Mean absolute error over all elements (``pred`` is *not* clamped, as the papers do)."""
    if pred.shape != target.shape:
        raise ValueError(f"l1_loss: shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}")
    return _reduce((pred - target).abs(), reduction, "l1_loss")


def charbonnier_loss(
    pred: Tensor, target: Tensor, eps: float = 1e-3, reduction: Reduction = "mean"
) -> Tensor:
    """Mean of ``sqrt((pred - target)² + eps²)`` (Charbonnier; MPRNet/Restormer use ε = 1e-3)."""
    if pred.shape != target.shape:
        raise ValueError(
            f"charbonnier_loss: shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}"
        )
    if eps <= 0:
        raise ValueError(f"charbonnier_loss: eps must be > 0, got {eps}")
    diff = pred - target
    return _reduce(torch.sqrt(diff * diff + eps * eps), reduction, "charbonnier_loss")


def fft_l1_loss(
    pred: Tensor, target: Tensor, norm: str = "ortho", reduction: Reduction = "mean"
) -> Tensor:
    """Mean absolute difference of the real and imaginary parts of ``rfft2`` over the last two axes.

    ``norm="ortho"`` (the default) makes the loss independent of the image size (by Parseval, a
    white error of standard deviation σ gives ≈ 0.56 σ, against ≈ 0.8 σ for the pixel L1);
    ``norm="backward"`` is MIMO-UNet's unnormalised form, ``√(H·W)`` times larger. Computed in
    float32 (the FFT has no bfloat16 kernels on the CPU).
    """
    if pred.shape != target.shape:
        raise ValueError(
            f"fft_l1_loss: shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}"
        )
    if norm not in ("ortho", "backward"):
        raise ValueError(f"fft_l1_loss: norm must be 'ortho' or 'backward', got {norm!r}")
    diff = torch.fft.rfft2((pred - target).float(), norm=norm)  # the FFT is linear
    return _reduce(torch.view_as_real(diff).abs(), reduction, "fft_l1_loss")


def mean_color_loss(pred: Tensor, target: Tensor, reduction: Reduction = "mean") -> Tensor:
    """Mean absolute difference of the per-channel spatial means of B×C×H×W ``pred``/``target``.

    Zero for any error that averages out over the image; exactly ``|b|`` for a uniform offset
    ``b`` on every channel.
    """
    if pred.ndim != 4 or pred.shape != target.shape:
        raise ValueError(
            f"mean_color_loss: expected two B×C×H×W tensors of one shape, got "
            f"{tuple(pred.shape)} and {tuple(target.shape)}"
        )
    diff = (pred.float() - target.float()).mean(dim=(2, 3))
    return _reduce(diff.abs(), reduction, "mean_color_loss")


def psnr_loss(
    pred: Tensor, target: Tensor, eps: float = 1e-8, reduction: Reduction = "mean"
) -> Tensor:
    """Each image's ``10·log10(mean((pred − target)²) + eps)`` (the negative PSNR at peak 1).

    NAFNet's ``PSNRLoss`` (its ``toY`` option aside): the per-image log makes every image's
    relative improvement count the same, whatever its error. ``eps`` caps the reward for an
    exact image (1e-8: 80 dB; 1e-6: 60 dB) and bounds the gradient on clean samples. Computed in
    float32; ``reduction="sample"`` gives the ``B`` per-image values.
    """
    if pred.ndim < 2 or pred.shape != target.shape:
        raise ValueError(
            f"psnr_loss: expected two tensors of one shape with a batch axis, got "
            f"{tuple(pred.shape)} and {tuple(target.shape)}"
        )
    if not eps > 0:
        raise ValueError(f"psnr_loss: eps must be > 0, got {eps}")
    mse = _reduce((pred.float() - target.float()).pow(2), "sample", "psnr_loss")
    return _reduce(10.0 * torch.log10(mse + eps)[:, None], reduction, "psnr_loss")
