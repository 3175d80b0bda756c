"""A restorer with a twin for black-and-white images: :class:`GreyTwin`.

A greyscale photo read as RGB has three equal channels, and its noise is the same in every
channel; a denoiser trained on colour noise (different in every channel) takes that for texture
(the default model's noise expert on the val photos made grey: σ 15, 28.20 → 28.68 dB, where a
twin fine-tuned on grey photos gives 34.40). ``GreyTwin`` runs ``colour`` on colour images and
``grey`` on images whose channels are equal, image by image, so a colour image gets exactly
``colour``'s output. The test is per call: a tile of a colour photo whose pixels are all
neutral goes to ``grey`` too, which is the right twin for it.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from aioir.nn.graph_capture import capturing_graph
from aioir.nn.inference_memory import declared_bytes_per_pixel

__all__ = ["GREY_TOLERANCE", "GreyTwin", "is_grey"]

#: Largest difference between two channels of a pixel still called grey: half an 8-bit level
#: (a greyscale file read as RGB has equal channels; 16-bit and 8-bit rounding stay under it).
GREY_TOLERANCE = 0.5 / 255


def is_grey(images: Tensor, tolerance: float = GREY_TOLERANCE) -> Tensor:
    """Per image of a B×C×H×W batch, whether every pixel's channels are within ``tolerance``
    of each other (B booleans; single-channel images are grey)."""
    if images.shape[1] == 1:
        return torch.ones(images.shape[0], dtype=torch.bool, device=images.device)
    spread = images.amax(dim=1) - images.amin(dim=1)
    return spread.flatten(1).amax(dim=1) <= tolerance


class GreyTwin(nn.Module):
    """``colour`` on colour images, ``grey`` on black-and-white ones (:func:`is_grey`).

    In eager mode only the twin an image needs runs; while tracing or exporting both run and
    the output is chosen per image. Weights: ``colour.`` and ``grey.``.
    """

    def __init__(self, colour: nn.Module, grey: nn.Module, tolerance: float = GREY_TOLERANCE):
        super().__init__()
        self.colour = colour
        self.grey = grey
        self.tolerance = float(tolerance)

    @property
    def inference_bytes_per_pixel(self) -> int | None:
        """The larger twin's declared activation memory per pixel (``None``: one declares
        none)."""
        sizes = [declared_bytes_per_pixel(self.colour), declared_bytes_per_pixel(self.grey)]
        return None if None in sizes else max(s for s in sizes if s is not None)

    def forward(self, x: Tensor) -> Tensor:
        grey = is_grey(x, self.tolerance)
        if capturing_graph():  # the graph holds both
            return torch.where(grey[:, None, None, None], self.grey(x), self.colour(x))
        if not bool(grey.any()):
            return self.colour(x)
        if bool(grey.all()):
            return self.grey(x)
        out = self.colour(x).clone()
        out[grey] = self.grey(x[grey]).to(out.dtype)
        return out

    def extra_repr(self) -> str:
        return f"tolerance={self.tolerance:.6g}"
