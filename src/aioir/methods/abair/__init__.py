"""ABAIR (Serrano-Lozano et al., arXiv 2411.18412): adaptive blind all-in-one restoration.

Importing this package registers the ``abair`` presets, its loss terms (``abair_segmentation``,
``abair_estimator``), its saved-model artefact (``adapter_mode``) and its training extra (the
``abair`` section: which phase a run trains). Notes: ``docs/methods/abair.md``.
"""

from aioir.methods.abair import artifacts as _artifacts  # noqa: F401  (adapter_mode)
from aioir.methods.abair import losses as _losses  # noqa: F401  (the two loss terms)
from aioir.methods.abair import training as _training  # noqa: F401  (the abair section)
from aioir.methods.abair.model import ABAIR, DegradationEstimator, GatedTransformerBlock

__all__ = ["ABAIR", "DegradationEstimator", "GatedTransformerBlock"]
