"""UDAIR on a NAFNet-block U-Net (ours, not the paper's): a CPU-fast UDAIR.

:class:`UDAIRNAF` is :class:`~aioir.methods.udair.model.UDAIRBase` — the DAM, its injection at
the three fusion points, the distribution adapters, ``forward_features`` /
``degradation_embedding``, the TTA hooks — on :class:`aioir.models.nafnet.NAFNet` instead of
Restormer. The fusion at each point keeps UDAIR's form ``reduce(block([x ‖ g]))`` with a
:class:`~aioir.nn.naf.NAFBlock` as the block (a transformer block costs more than the rest of
a small NAF U-Net; ``docs/methods/udair.md``, "Variants"). Its presets are registered under the
``udair`` architecture (``udair-naf-small``, ``udair-naf-tiny``), so the source bank, ``--tta``
and ``aioir adapt`` apply as to any UDAIR.
"""

from __future__ import annotations

from typing import Unpack

from aioir.methods.udair.model import (
    SMALL_DAM,
    TINY_DAM,
    DegradationOptions,
    UDAIRBase,
    split_degradation_options,
)
from aioir.models.nafnet import NAFNet, NAFNetOptions
from aioir.models.registry import Preset, register_presets
from aioir.nn.naf import NAFBlock

__all__ = ["UDAIRNAF"]


class UDAIRNAFOptions(NAFNetOptions, DegradationOptions, total=False):
    """:class:`UDAIRNAF`'s keywords: the backbone's and the degradation side's."""


class UDAIRNAF(UDAIRBase, NAFNet):
    """UDAIR with a NAFNet-block U-Net (see the module docstring).

    Args (keywords): :class:`~aioir.models.nafnet.NAFNet`'s sizes
    (:class:`~aioir.models.nafnet.NAFNetOptions`; RGB only) and the degradation side's
    (:class:`~aioir.methods.udair.model.DegradationOptions`, see
    :meth:`~aioir.methods.udair.model.UDAIRBase.build_degradation_module`).
    """

    def __init__(self, **options: Unpack[UDAIRNAFOptions]) -> None:
        degradation, backbone = split_degradation_options(options, "UDAIRNAF")
        super().__init__(**backbone)
        blocks = self.block_options
        self.build_degradation_module(
            lambda c: NAFBlock(c, **blocks), self.backbone_options["bias"], **degradation
        )


# ------------------------------------------------------------------------------ presets
# SMALL_DAM / TINY_DAM: udair-small's / udair-tiny's degradation side (the default model's)
UDAIRNAF_PRESETS: dict[str, Preset] = {
    "naf-small": Preset(
        {"dim": 16, "num_blocks": (1, 1, 4, 8), "decoder_blocks": (1, 1, 1), **SMALL_DAM},
        parameters=2_545_575,
        description="UDAIR on a NAFNet-block U-Net (ours), dim 16, blocks [1,1,4,8] / decoder "
        "[1,1,1], udair-small's DAM (CPU-fast)",
    ),
    "naf-tiny": Preset(
        {"dim": 8, "num_blocks": (1, 1, 1, 1), "decoder_blocks": (1, 1, 1), **TINY_DAM},
        parameters=396_119,
        description="UDAIR on a NAFNet-block U-Net, dim 8, one block per level (tests)",
    ),
}

register_presets("udair", UDAIRNAF, UDAIRNAF_PRESETS)
