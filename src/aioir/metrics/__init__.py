"""Full-reference image metrics and the named protocols they are reported under.

* :func:`psnr`, :func:`ssim` — numpy ``H×W[×C]`` → float, torch ``N×C×H×W`` → per-image tensor;
  checked against scikit-image and BasicSR conventions (see each module's docstring).
* :func:`rgb_to_y` — BT.601 luma as MATLAB's ``rgb2ycbcr``.
* :class:`MetricProtocol`, :data:`PROTOCOLS`, :func:`get_protocol` — ``promptir``,
  ``basicsr-y``, ``udair``, ``clean``; print :meth:`MetricProtocol.header` with every table.
"""

from __future__ import annotations

from aioir.metrics.color import rgb_to_y
from aioir.metrics.protocols import PROTOCOLS, MetricProtocol, get_protocol
from aioir.metrics.psnr import psnr
from aioir.metrics.ssim import ssim

__all__ = ["PROTOCOLS", "MetricProtocol", "get_protocol", "psnr", "rgb_to_y", "ssim"]
