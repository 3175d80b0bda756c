"""The dark channel (He, Sun & Tang, CVPR 2009): the minimum over colour channels and a square
window. Near 0 on a clear outdoor photo, the airlight's share under haze — what the dark channel
prior dehazes with (:class:`aioir.models.DarkChannelPrior`) and one of the statistics a
filter-bank gate may read (:func:`aioir.nn.filter_bank.input_statistics`)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

__all__ = ["dark_channel"]


def dark_channel(images: Tensor, patch: int) -> Tensor:
    """Minimum over channels and a ``patch``² window, edge-replicated: B×C×H×W → B×1×H×W."""
    low = images.amin(dim=1, keepdim=True)
    before, after = (patch - 1) // 2, patch // 2
    padded = F.pad(low, (before, after, before, after), mode="replicate")
    # a square window's minimum is separable: rows, then columns
    rows = F.max_pool2d(-padded, (patch, 1), stride=1)
    return -F.max_pool2d(rows, (1, patch), stride=1)
