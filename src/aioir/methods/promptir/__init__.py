"""PromptIR (Potlapalli et al., NeurIPS 2023): Restormer + prompt blocks in the decoder.

Importing this package registers the ``promptir`` presets (``aioir.models.load_model``); the
authors' Lightning checkpoints load as they are. Notes: ``docs/methods/promptir.md``.
"""

from aioir.methods.promptir.model import PromptIR

__all__ = ["PromptIR"]
