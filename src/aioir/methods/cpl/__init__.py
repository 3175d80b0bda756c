"""CPL (Wu et al., "Beyond Degradation Redundancy: Contrastive Prompt Learning for All-in-One
Image Restoration", TPAMI 2025): sparse prompt modules and contrastive prompt regularisation on
PromptIR.

Importing this package registers the ``cpl`` presets (the authors' ``SparsePromptIR``; their
raw and BasicSR checkpoints load as they are) and the ``cpr`` / ``cpr-selffeat`` loss terms.
Notes: ``docs/methods/cpl.md``.
"""

from aioir.methods.cpl import losses as _losses  # noqa: F401  (registers the loss terms)
from aioir.methods.cpl.model import CPL, NegativePrompts, negative_prompt_weights

__all__ = ["CPL", "NegativePrompts", "negative_prompt_weights"]
