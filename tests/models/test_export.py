"""Export: ONNX (tracing exporter) runs in onnxruntime and matches PyTorch."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

import aioir


def _export_and_compare(name: str) -> None:
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    model = aioir.load_model(name)
    buf = io.BytesIO()
    # trace at a padded size and export the padded-input forward with dynamic H, W
    wrapper = _Padded(model).eval()
    torch.onnx.export(
        wrapper, (torch.rand(1, 3, 32, 32),), buf, dynamo=False, opset_version=17,
        input_names=["x"], output_names=["y"], dynamic_axes={"x": {2: "h", 3: "w"}},
    )  # fmt: skip
    onnx.checker.check_model(onnx.load_from_string(buf.getvalue()))
    session = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    x = torch.rand(1, 3, 40, 48)
    (y,) = session.run(None, {"x": x.numpy()})
    assert not model.training
    with torch.no_grad():
        ref = model(x).numpy()
    np.testing.assert_allclose(y, ref, atol=1e-4)


class _Padded(torch.nn.Module):
    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_padded(x, self.model.context(x))


@pytest.mark.filterwarnings("ignore")
def test_onnx_export_udair_tiny() -> None:
    _export_and_compare("udair-tiny")


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("name", ["restormer-tiny", "promptir-tiny"])
def test_onnx_export_other_tiny(name: str) -> None:
    _export_and_compare(name)
