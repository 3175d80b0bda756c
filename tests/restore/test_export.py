"""Export: ONNX with dynamic axes and TorchScript match PyTorch at sizes other than the export size."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from aioir.errors import ConfigError, ImageWriteError
from aioir.models import FilterBankRestorer, load_model, save_pretrained
from aioir.nn.ensemble import GeometricEnsemble
from aioir.restore.export import PaddedForward, export_model

ort = pytest.importorskip("onnxruntime")


class SmallUNet(nn.Module):
    """Down/up-sampling conv net that needs sides divisible by 8 (no padding of its own)."""

    size_multiple = 8

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.inp = nn.Conv2d(3, 8, 3, padding=1)
        self.down = nn.Conv2d(8, 8, 3, stride=8, padding=1)
        self.up = nn.ConvTranspose2d(8, 8, 8, stride=8)
        self.out = nn.Conv2d(16, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = torch.relu(self.inp(x))
        g = self.up(torch.relu(self.down(f)))
        return x + self.out(torch.cat([f, g], dim=1))


def _ort_run(path, x: torch.Tensor) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"input": x.numpy()})
    return y


def test_padded_forward_matches_reflect_padding():
    model = SmallUNet().eval()
    x = torch.rand(1, 3, 21, 30)
    with torch.no_grad():
        y = PaddedForward(model)(x)
        ref = model(nn.functional.pad(x, (0, 2, 0, 3), mode="reflect"))[..., :21, :30]
    torch.testing.assert_close(y, ref)


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("shape", [(1, 3, 40, 56), (2, 3, 33, 47)])
def test_onnx_matches_pytorch_at_other_sizes(tmp_path, shape):
    model = SmallUNet().eval()
    path = export_model(model, tmp_path / "m.onnx", "onnx", size=32)
    x = torch.rand(*shape)
    with torch.no_grad():
        ref = PaddedForward(model)(x).numpy()
    y = _ort_run(path, x)
    assert y.shape == shape
    np.testing.assert_allclose(y, ref, atol=1e-4)


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("name", ["udair-tiny", "restormer-tiny", "promptir-tiny"])
def test_onnx_registered_tiny_models(tmp_path, name):
    model = load_model(name)
    path = export_model(model, tmp_path / "m.onnx", "onnx", size=32)
    x = torch.rand(1, 3, 44, 37)
    with torch.no_grad():
        ref = model(x).numpy()  # the model pads itself; the graph pads the same way
    np.testing.assert_allclose(_ort_run(path, x), ref, atol=1e-4)


@pytest.mark.filterwarnings("ignore")
def test_filter_bank_model_exports_to_onnx_and_torchscript(tmp_path):
    torch.manual_seed(0)
    # the default model's kind of experts: a CNN averaged over flips, the dark channel prior,
    # an adaptive gamma (a per-image exponent)
    experts = [
        GeometricEnsemble(load_model("residual-cnn-tiny")),
        load_model("dark-channel-prior"),
        load_model("adaptive-gamma-brighten"),
    ]
    wrapped = FilterBankRestorer(load_model("udair-tiny"), filters=3, taps=5, experts=experts)
    with torch.no_grad():  # a gate that mixes all candidates, so every path is exercised
        nn.init.normal_(wrapped.filter_bank.gate[-1].weight, std=0.5)
        nn.init.normal_(wrapped.filter_bank.experts[0].module.body[-1].weight, std=0.1)
    _saved_model_exports_identically(wrapped, tmp_path)


def _saved_model_exports_identically(wrapped: nn.Module, tmp_path) -> None:
    """Save ``wrapped``, load it back as ``aioir export --model DIR`` does, export it to ONNX
    and TorchScript and check both give the loaded model's output."""
    save_pretrained(wrapped, tmp_path / "saved")
    model = load_model(tmp_path / "saved")  # as `aioir export --model DIR` loads it
    assert isinstance(model, FilterBankRestorer)
    x = torch.rand(1, 3, 44, 37)
    with torch.no_grad():
        ref = model(x)
    path = export_model(model, tmp_path / "m.onnx", "onnx", size=32)
    np.testing.assert_allclose(_ort_run(path, x), ref.numpy(), atol=1e-4)
    loaded = torch.jit.load(str(export_model(model, tmp_path / "m.pt", "torchscript", size=32)))
    torch.testing.assert_close(loaded(x), ref, atol=1e-5, rtol=0)


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("powers", [{}, {"highlight_powers": (8.0, 128.0)},
                                    {"highlight_powers": (8.0,), "shadow_powers": (128.0,)},
                                    {"highlight_powers": (8.0,), "shadow_powers": (128.0,),
                                     "shadow_bands": 3},
                                    {"gate_statistics": True}])  # fmt: skip
def test_a_gate_routed_by_a_classifier_exports_to_onnx_and_torchscript(tmp_path, powers):
    """The classifier too, plain or reading the input's highlights (and shadows: log-domain
    power means; and the shadows of horizontal bands, whose edges follow the input's height);
    and gates that read the input's statistics and its bands' shadows themselves."""
    from aioir.nn.degradation_classifier import degradation_classifier

    torch.manual_seed(0)
    statistics = bool(powers.pop("gate_statistics", False)) if powers else False
    classifier = degradation_classifier(["noise", "haze", "clean"], widths=(4, 6), hidden=8,
                                        **powers)  # fmt: skip
    wrapped = FilterBankRestorer(
        load_model("udair-tiny"),
        filters=3,
        taps=5,
        classifier=classifier,
        routed_gate=True,
        gate_statistics=statistics,
    )
    with torch.no_grad():  # every class's gate mixes all candidates
        nn.init.normal_(wrapped.filter_bank.gate[-1].weight, std=0.5)
    _saved_model_exports_identically(wrapped, tmp_path)


@pytest.mark.filterwarnings("ignore")
def test_torchscript_registered_tiny_model(tmp_path):
    model = load_model("udair-tiny")
    loaded = torch.jit.load(str(export_model(model, tmp_path / "m.pt", "torchscript", size=32)))
    x = torch.rand(1, 3, 44, 37)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), atol=1e-5, rtol=0)


@pytest.mark.filterwarnings("ignore")
def test_torchscript_matches_pytorch_at_other_sizes(tmp_path):
    model = SmallUNet().eval()
    path = export_model(model, tmp_path / "m.pt", "torchscript", size=32)
    loaded = torch.jit.load(str(path))
    x = torch.rand(2, 3, 27, 50)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), PaddedForward(model)(x), atol=1e-5, rtol=0)


def test_existing_file_is_not_overwritten(tmp_path):
    target = tmp_path / "m.onnx"
    target.write_bytes(b"keep")
    with pytest.raises(ImageWriteError, match="exists"):
        export_model(SmallUNet(), target, "onnx", size=16)
    assert target.read_bytes() == b"keep"
    export_model(SmallUNet(), target, "torchscript", size=16, overwrite=True)
    assert target.read_bytes() != b"keep"
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]  # no temporary file left


def test_bad_format_and_size(tmp_path):
    with pytest.raises(ConfigError, match="format"):
        export_model(SmallUNet(), tmp_path / "m.x", "tflite")
    with pytest.raises(ConfigError, match="size"):
        export_model(SmallUNet(), tmp_path / "m.onnx", "onnx", size=4)
