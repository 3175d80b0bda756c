"""``aioir demo``: writes the page, prints the table, one-line errors, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aioir import cli
from aioir.apps import demo
from aioir.cli import demo as demo_cli
from aioir.errors import ConfigError
from aioir.metrics import get_protocol
from aioir.models import load_model, save_pretrained


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("model") / "udair-tiny.safetensors"
    save_pretrained(load_model("udair-tiny"), path)
    return str(path)


@pytest.fixture
def run(model_path, capsys):
    def _run(*argv: str) -> tuple[int, str, str]:
        code = cli.main(["demo", "--model", model_path, "--size", "48", *argv])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return _run


def _one_line_error(err: str) -> str:
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("aioir demo: error: "), err
    return lines[0]


def test_writes_the_demo_and_prints_the_table(tmp_path, run):
    out = tmp_path / "demo"
    code, stdout, err = run("--output", str(out), "--tasks", "noise,underwater", "-q")
    assert code == 0, err
    assert err == ""  # quiet: no progress bar, no messages
    lines = stdout.splitlines()
    assert lines[0] == get_protocol("clean").header()
    assert [ln.split("|")[1].strip() for ln in lines[3:6]] == ["noise", "underwater", "mean"]
    assert "restored + TTA skipped:" in stdout  # the tiny model has no source bank
    data = json.loads((out / "metrics.json").read_text())
    assert data["tasks"] == ["noise", "underwater"] and data["size"] == 48
    assert len(data["images"]) == 10
    for name in ("grid.png", "index.html", "metrics.csv", "clean/bridge.png"):
        assert (out / name).is_file()
    assert (out / "restored" / "underwater" / "wine.png").is_file()


def test_existing_folder_is_refused_then_replaced_with_overwrite(tmp_path, run):
    out = tmp_path / "demo"
    out.mkdir()
    (out / "metrics.json").write_text("{}")
    code, stdout, err = run("--output", str(out), "--tasks", "blur", "--no-tta", "-q")
    assert code == 1 and stdout == ""
    line = _one_line_error(err)
    assert str(out) in line and "--overwrite" in line
    assert (out / "metrics.json").read_text() == "{}"

    code, stdout, err = run("--output", str(out), "--tasks", "blur", "--no-tta", "--overwrite")
    assert code == 0, err
    assert json.loads((out / "metrics.json").read_text())["tasks"] == ["blur"]
    assert f"aioir demo: wrote {out}" in err
    assert "restored + TTA skipped: not asked for (--no-tta)" in stdout


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--model", "no/such/model.safetensors"], "no such model"),
        (["--tasks", "noise,fog"], "unknown task 'fog'"),
        (["--size", "20"], "size must be an integer >= 32"),
        (["--device", "tpu"], "unknown device"),
    ],
)
def test_bad_input_is_a_one_line_error(tmp_path, run, argv, needle):
    out = tmp_path / "demo"
    code, stdout, err = run("--output", str(out), *argv)
    assert code == 1 and stdout == ""
    assert needle in _one_line_error(err)
    assert not out.exists() and sorted(tmp_path.iterdir()) == []


def test_usage_errors_exit_2(tmp_path, capsys):
    for argv in (["--size", "0"], ["--size", "big"], ["--tasks", ","], ["--bogus"]):
        with pytest.raises(SystemExit) as exc:
            cli.main(["demo", "--output", str(tmp_path / "d"), *argv])
        assert exc.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_debug_shows_the_traceback(tmp_path, model_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x").write_text("x")
    with pytest.raises(ConfigError, match="folder exists"):
        cli.main(["--debug", "demo", "--output", str(tmp_path / "d"), "--model", model_path])


def test_defaults_are_the_library_defaults():
    args = cli.build_parser().parse_args(["demo"])
    assert args.model == "default"  # the shipped default model
    assert args.output == demo.DEFAULT_OUTPUT == Path("outputs/demo")
    assert args.size == demo.DEFAULT_SIZE
    assert args.tasks == demo.DEFAULT_TASKS == demo_cli.DEFAULT_TASKS
    assert not (args.no_tta or args.overwrite or args.quiet) and args.device == "auto"
    assert demo_cli in cli.COMMAND_MODULES


@pytest.mark.parametrize("terminal", [False, True])
def test_progress_bar_only_on_a_terminal(tmp_path, monkeypatch, capsys, terminal):
    """`make demo` in CI wrote its progress bar into the log (issue 22, 8)."""
    import sys
    import types

    asked = {}

    def fake_run_demo(output, **kwargs):
        asked.update(kwargs)
        return types.SimpleNamespace(table=lambda: "table", seconds={"total": 1.0})

    monkeypatch.setattr(demo, "run_demo", fake_run_demo)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: terminal)
    assert cli.main(["demo", "--output", str(tmp_path / "d")]) == 0
    assert asked["progress"] is terminal
    assert cli.main(["demo", "--output", str(tmp_path / "d"), "-q"]) == 0
    assert asked["progress"] is False
