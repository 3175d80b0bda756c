"""The command line: every command's --help works, errors are one line with the right status."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from aioir import cli
from aioir.cli import info
from aioir.errors import ImageReadError


def _all_command_paths(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name)
                yield from _all_command_paths(sub, (*prefix, name))


COMMANDS = sorted(_all_command_paths(cli.build_parser()))


def test_command_tree_is_not_empty():
    assert ("data", "check") in COMMANDS
    assert ("models",) in COMMANDS


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p))
def test_every_command_has_working_help(path, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main([*path, "--help"])
    assert exc.value.code == 0
    assert "usage: aioir" in capsys.readouterr().out


def test_no_command_prints_help_and_exits_2(capsys):
    assert cli.main([]) == 2
    assert "usage: aioir" in capsys.readouterr().err


def test_group_without_subcommand_shows_group_help(capsys):
    assert cli.main(["data"]) == 2
    assert "usage: aioir data" in capsys.readouterr().err


def test_unknown_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["no-such-command"])
    assert exc.value.code == 2


def test_user_errors_are_one_line_without_traceback(monkeypatch, capsys):
    def boom(args):
        raise ImageReadError("photo.jpg: file is empty")

    monkeypatch.setattr(info, "_models", boom)
    assert cli.main(["models"]) == 1
    err = capsys.readouterr().err
    assert err == "aioir: error: photo.jpg: file is empty\n"


def test_debug_flag_shows_the_traceback(monkeypatch):
    def boom(args):
        raise ImageReadError("photo.jpg: file is empty")

    monkeypatch.setattr(info, "_models", boom)
    with pytest.raises(ImageReadError):
        cli.main(["--debug", "models"])
    with pytest.raises(ImageReadError):  # after the command too
        cli.main(["models", "--debug"])
    assert cli.main(["models"]) == 1  # and only when asked


def test_debug_is_accepted_after_every_command_and_sub_command():
    parser = cli.build_parser()
    assert parser.parse_args(["data", "check", "ROOT", "--layout", "x", "--debug"]).debug is True
    assert parser.parse_args(["--debug", "data", "check", "ROOT", "--layout", "x"]).debug is True
    assert parser.parse_args(["data", "check", "ROOT", "--layout", "x"]).debug is False


def test_console_script_runs_as_a_module():
    out = subprocess.run(
        [sys.executable, "-m", "aioir.cli", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.startswith("aioir ")


def test_unknown_layout_of_data_check_is_a_usage_error(tmp_path, capsys):
    """issue 22, 8: exit 2 like argparse's usage errors, not 1 (a failed check)."""
    assert cli.main(["data", "check", str(tmp_path), "--layout", "bogus"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("aioir data check: error: unknown dataset layout 'bogus'")
    assert err.count("\n") == 1
    assert cli.main(["data", "check", str(tmp_path), "--layout", "paired"]) == 1  # a real check


def test_models_lists_the_default_model_first(capsys):
    """issue 22, 6: `--model default` is the model most people use; `aioir models` lists it."""
    assert cli.main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split()[:4] == ["default", "udair", "small", "5,498,334"]
    assert "shipped default model" in lines[1]


@pytest.mark.parametrize("command", ["restore", "evaluate", "demo"])
def test_model_help_names_default(command, capsys):
    with pytest.raises(SystemExit):
        cli.main([command, "--help"])
    out = " ".join(capsys.readouterr().out.split())
    help_text = out[out.index("--model") :]
    assert "default (the shipped default model" in help_text.replace("'", "")
