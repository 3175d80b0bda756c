"""Perceive-IR (Zhang et al., TIP 2026): a restorer guided by DINOv2 semantics and a compact
degradation code, trained with quality-aware losses. Notes: ``docs/methods/perceive_ir.md``.

Importing this package registers the ``perceive-ir`` presets (the authors' network; needs
DINOv2-base weights) and the weight-free ``perceive-ir-lite`` variant, the authors' checkpoint
key names, the loss terms and the training extra.
"""

from aioir.methods.perceive_ir import artifacts as _artifacts  # noqa: F401  (quality perceiver)
from aioir.methods.perceive_ir import losses as _losses  # noqa: F401  (the loss terms)
from aioir.methods.perceive_ir import training as _training  # noqa: F401  (the extras)
from aioir.methods.perceive_ir.model import CompactFeatureExtractor, PerceiveIR, PerceiveIROutput

__all__ = ["CompactFeatureExtractor", "PerceiveIR", "PerceiveIROutput"]
