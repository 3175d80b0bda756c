"""ITU-R BT.601 luma weights: one definition for every layer (pure Python, no torch/numpy).

``Y' = 0.299 R + 0.587 G + 0.114 B`` (Pillow's ``convert("L")``, MATLAB's ``rgb2gray``) gives
luma on the scale of its input. MATLAB's ``rgb2ycbcr`` (used by the Y-channel metrics,
:mod:`aioir.metrics.color`) scales the same weights to the studio range, 219 levels above an
offset of 16 on the 0–255 scale: ``Y255 = 16 + 65.481 R + 128.553 G + 24.966 B`` for ``R, G, B``
in [0, 1]. The products ``219 × weight`` are exactly those floats.
"""

from __future__ import annotations

__all__ = ["BT601_LUMA", "BT601_OFFSET", "BT601_RGB_WEIGHTS"]

#: Weights of R, G, B giving BT.601 luma on the input's scale.
BT601_LUMA: tuple[float, float, float] = (0.299, 0.587, 0.114)

#: Y offset on the 0–255 scale (MATLAB ``rgb2ycbcr``).
BT601_OFFSET: float = 16.0

#: Weights of R, G, B in [0, 1] giving Y on the 0–255 scale (MATLAB ``rgb2ycbcr``):
#: ``(65.481, 128.553, 24.966)``.
BT601_RGB_WEIGHTS: tuple[float, float, float] = (
    219.0 * BT601_LUMA[0],
    219.0 * BT601_LUMA[1],
    219.0 * BT601_LUMA[2],
)
