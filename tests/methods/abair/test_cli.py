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


def _photos(folder: Path) -> Path:
    rng = np.random.default_rng(1)
    for i in range(2):
        write_image(folder / f"p{i}.png", rng.random((36, 40, 3)).astype(np.float32))
    return folder


def test_evaluate_takes_the_adapter_mode_and_the_per_case_oracle(
    tmp_path: Path, saved: Path, capsys
) -> None:
    bench = f"composite:{_photos(tmp_path / 'photos')}:haze,lowlight+haze"
    argv = ["evaluate", "--model", str(saved), "--benchmark", bench, "--crop", "16"]
    argv += ["--no-progress", "--json", str(tmp_path / "r.json")]
    tables = {}
    for flags in (["--adapter-mode", "off"], ["--task", "case"], ["--task", "haze"]):
        code = cli.main([*argv, *flags])
        out, err = capsys.readouterr()
        assert code == 0, err
        tables[flags[-1]] = out
    assert "model options: task = each case's task" in tables["case"]
    assert "model options: adapter_mode = off" in tables["off"]
    rows = {
        k: [r for r in v.splitlines() if r.startswith("| lowlight+haze")] for k, v in tables.items()
    }
    assert rows["case"] != rows["haze"] != rows["off"]  # the per-case oracle is not haze alone
    haze = [r for r in tables["case"].splitlines() if r.startswith("| haze ")]
    assert haze == [r for r in tables["haze"].splitlines() if r.startswith("| haze ")]
    assert cli.main([*argv, "--task", "snow"]) == 1
    err = capsys.readouterr().err
    assert "no adapter for task 'snow'" in err and "Traceback" not in err
