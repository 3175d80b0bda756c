"""UDAIR (Fan et al.): a Restormer-style restorer with a VQ-codebook degradation module, a bank
of per-task source statistics and CORAL test-time adaptation. Notes: ``docs/methods/udair.md``.

Importing this package registers the ``udair`` presets (the paper's network and our NAFNet-block
variant, ``udair-naf-*``), UDAIR's saved-model artefacts (source
bank, adapters switch), its loss (``cscl``), its training extra (``source_bank``) and its test-time adapter.
"""

from aioir.methods.udair import artifacts as _artifacts  # noqa: F401  (source bank, adapters)
from aioir.methods.udair import losses as _losses  # noqa: F401  (the cscl loss term)
from aioir.methods.udair import training as _training  # noqa: F401  (the source_bank extra)
from aioir.methods.udair import tta as _tta  # noqa: F401  (registers the test-time adapter)
from aioir.methods.udair.bank import SourceBank
from aioir.methods.udair.model import DAM, UDAIR, UDAIRBase, UDAIROutput
from aioir.methods.udair.naf import UDAIRNAF

__all__ = ["DAM", "UDAIR", "UDAIRNAF", "SourceBank", "UDAIRBase", "UDAIROutput"]
