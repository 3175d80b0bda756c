"""Perceive-IR (Zhang et al., TIP 2026): a restorer guided by DINOv2 semantics and a compact
degradation code, trained with quality-aware losses. Notes: ``docs/methods/perceive_ir.md``.

Importing this package registers the ``perceive-ir`` presets (the authors' network; needs
DINOv2-base weights) and the weight-free ``perceive-ir-lite`` variant, the authors' checkpoint
key names, the loss terms and the training extra.
"""

from aioir.methods.perceive_ir.model import CompactFeatureExtractor, PerceiveIR, PerceiveIROutput

__all__ = ["CompactFeatureExtractor", "PerceiveIR", "PerceiveIROutput"]
