"""Export a restoration model to ONNX or TorchScript.

The exported graph takes ``input`` (B×3×H×W float32 in [0, 1], any B, H, W ≥ the model's
``size_multiple``) and returns ``output`` of the same shape. Padding to ``size_multiple`` is part
of the graph: :class:`PaddedForward` always pads (by zero or more pixels, computed from the
input's shape), so the traced graph has no size-dependent branch and works at every size.

* **ONNX**: the TorchScript-based exporter (``dynamo=False``; the newer exporter needs the
  ``onnxscript`` package), opset 17 by default, dynamic batch/height/width axes.
* **TorchScript**: :func:`torch.jit.trace` of the same wrapper (``torch.jit.script`` cannot
  compile the models' Python-level hooks); shape arithmetic is recorded, so other sizes work.

Files are written to a temporary name beside the target and moved in place; an existing file
is replaced only with ``overwrite=True``.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aioir.errors import ConfigError, ImageWriteError
from aioir.io import write_bytes_atomically

__all__ = ["FORMATS", "PaddedForward", "export_model"]

FORMATS: tuple[str, ...] = ("onnx", "torchscript")


class PaddedForward(nn.Module):
    """``model`` with reflect padding to ``size_multiple`` and cropping written as tensor ops."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.multiple = max(1, int(getattr(model, "size_multiple", 1)))

    def forward(self, x: Tensor) -> Tensor:
        """Restore ``x`` (B×3×H×W); pads, runs the model, crops back."""
        h, w = x.shape[-2], x.shape[-1]
        m = self.multiple
        ph = (m - h % m) % m
        pw = (m - w % m) % m
        y = self.model(F.pad(x, (0, pw, 0, ph), mode="reflect"))
        return y[:, :, :h, :w]


def export_model(
    model: nn.Module,
    path: str | os.PathLike[str],
    format: str = "onnx",
    *,
    size: int = 256,
    opset: int = 17,
    overwrite: bool = False,
) -> Path:
    """Export ``model`` (eval mode, on the CPU) to ``path``; returns the path written.

    ``size`` is the side of the example input used for tracing (any size works afterwards).
    Raises ConfigError for a bad format/size and ImageWriteError when ``path`` exists.
    """
    fmt = format.lower()
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {format!r} (use {', '.join(FORMATS)})")
    wrapper = PaddedForward(model).eval()
    if size < wrapper.multiple:
        raise ConfigError(f"--size must be at least {wrapper.multiple}, not {size}")
    target = Path(path)
    if target.exists() and not overwrite:
        raise ImageWriteError(f"{target}: exists; pass --overwrite to replace it")
    model.cpu().eval()
    example = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about size-dependent Python values
        if fmt == "onnx":
            with torch.no_grad():
                torch.onnx.export(
                    wrapper,
                    (example,),
                    buffer,
                    dynamo=False,
                    opset_version=opset,
                    input_names=["input"],
                    output_names=["output"],
                    dynamic_axes={
                        "input": {0: "batch", 2: "height", 3: "width"},
                        "output": {0: "batch", 2: "height", 3: "width"},
                    },
                )
        else:
            with torch.no_grad():
                traced = torch.jit.trace(wrapper, (example,), check_trace=False)
            torch.jit.save(traced, buffer)
    write_bytes_atomically(target, buffer.getvalue(), overwrite=overwrite)
    return target
