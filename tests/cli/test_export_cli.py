"""``aioir export``: writes a working ONNX / TorchScript file, never overwrites silently."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aioir import cli
from aioir.models import load_model, save_pretrained


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    model = load_model("restormer-tiny")
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_pretrained(model, path)
    return model, str(path)


@pytest.mark.filterwarnings("ignore")
def test_export_onnx_runs_at_another_size(tmp_path, saved, capsys):
    ort = pytest.importorskip("onnxruntime")
    model, path = saved
    target = tmp_path / "m.onnx"
    argv = ["export", "--model", path, "--format", "onnx", "-o", str(target), "--size", "32"]
    assert cli.main(argv) == 0
    assert capsys.readouterr().out.strip() == str(target)
    session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    x = torch.rand(2, 3, 24, 41)
    (y,) = session.run(None, {"input": x.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(y, model(x).numpy(), atol=1e-4)
    # a second export without --overwrite fails in one line and keeps the file
    before = target.read_bytes()
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert "exists" in err and len(err.strip().splitlines()) == 1
    assert target.read_bytes() == before


@pytest.mark.filterwarnings("ignore")
def test_export_torchscript(tmp_path, saved):
    model, path = saved
    target = tmp_path / "m.pt"
    assert cli.main(["export", "--model", path, "--format", "torchscript", "-o", str(target),
                     "--size", "16"]) == 0  # fmt: skip
    x = torch.rand(1, 3, 20, 28)
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.load(str(target))(x), model(x), atol=1e-5, rtol=0)


def test_export_usage_errors(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("aioir.restore.resolve.shipped_weights", lambda name: None)
    out = str(tmp_path / "m.onnx")
    assert cli.main(["export", "--model", "default", "--format", "onnx", "-o", out]) == 2
    assert "no default model" in capsys.readouterr().err
    assert cli.main(["export", "--model", "udair-tiny", "--format", "onnx", "-o", out]) == 2
    assert "no trained weights" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        cli.main(["export", "--model", "udair-tiny", "--format", "tflite", "-o", out])
    assert exc.value.code == 2
    assert not (tmp_path / "m.onnx").exists()
