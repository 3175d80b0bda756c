"""ABAIR on ``aioir restore``: --adapter-mode, --task, --explain, one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aioir import cli
from aioir.io import write_image
from aioir.models import load_model, save_model
from aioir.nn.adapters import lora_parameters


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    torch.manual_seed(0)
    model = load_model("abair-tiny")
    with torch.no_grad():
        for p in lora_parameters(model):
            p.normal_(0.0, 0.05)
    folder = tmp_path_factory.mktemp("abair") / "model"
    save_model(model, folder)
    return folder


def _image(folder: Path) -> Path:
    rng = np.random.default_rng(0)
    return write_image(folder / "a.png", rng.random((20, 24, 3)).astype(np.float32))


@pytest.mark.parametrize(
    "flags", [[], ["--adapter-mode", "onehot"], ["--task", "haze"], ["--adapter-mode", "off"]]
)
def test_restore_modes_print_nothing_extra(tmp_path: Path, saved: Path, capsys, flags) -> None:
    src = _image(tmp_path)
    code = cli.main(
        ["restore", str(src), "-o", str(tmp_path / "out"), "--model", str(saved), "-q", *flags]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out == "" and (tmp_path / "out" / "a.png").is_file()


def test_explain_prints_the_estimate_per_image(tmp_path: Path, saved: Path, capsys) -> None:
    src = _image(tmp_path)
    argv = ["restore", str(src), "-o", str(tmp_path / "out"), "--model", str(saved), "-q"]
    code = cli.main([*argv, "--explain", "--adapter-mode", "onehot"])
    out, err = capsys.readouterr()
    assert code == 0, err
    (line,) = out.splitlines()
    assert line.startswith(f"{src}: noise=") and "-> onehot " in line


def test_bad_task_and_model_without_options_exit_2(tmp_path: Path, saved: Path, capsys) -> None:
    src = _image(tmp_path)
    argv = ["restore", str(src), "-o", str(tmp_path / "out"), "-q"]
    assert cli.main([*argv, "--model", str(saved), "--task", "snow"]) == 2
    err = capsys.readouterr().err
    assert "no adapter for task 'snow'" in err and "Traceback" not in err
    other = tmp_path / "udair"
    save_model(load_model("udair-tiny"), other)
    assert cli.main([*argv, "--model", str(other), "--adapter-mode", "soft"]) == 2
    assert "takes no inference options (adapter_mode)" in capsys.readouterr().err
