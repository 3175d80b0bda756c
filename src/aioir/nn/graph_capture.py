"""Whether a forward pass is being captured as a graph: :func:`capturing_graph`.

Layers that skip work depending on the data (a filter-bank head leaving out candidates it gives
no weight, a black-and-white twin run only on grey images) may do so in eager mode only: a
traced, scripted, compiled or ONNX-exported graph must hold every branch.
"""

from __future__ import annotations

import torch

__all__ = ["capturing_graph"]


def capturing_graph() -> bool:
    """True while tracing, scripting, compiling or exporting to ONNX."""
    return (
        torch.jit.is_tracing()
        or torch.jit.is_scripting()
        or torch.onnx.is_in_onnx_export()
        or torch.compiler.is_compiling()
    )
