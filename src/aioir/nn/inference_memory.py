"""The activation memory a module declares for inference, per input pixel.

A model (or model part) may carry ``inference_bytes_per_pixel``: what restoring one pixel costs
it beside the image (a preset's measured figure, or a wrapper's sum of its parts). The tiling
heuristic (:mod:`aioir.restore.tiling`) plans tiles from it; wrappers add their own.
"""

from __future__ import annotations

from torch import nn

__all__ = ["declared_bytes_per_pixel"]


def declared_bytes_per_pixel(module: nn.Module) -> int | None:
    """``module``'s ``inference_bytes_per_pixel`` when it declares a positive number, else
    ``None``."""
    declared = getattr(module, "inference_bytes_per_pixel", None)
    if isinstance(declared, (int, float)) and declared > 0:
        return int(declared)
    return None
