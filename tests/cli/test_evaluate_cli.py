"""``aioir evaluate``: tables with the protocol header, JSON/CSV outputs, one-line errors."""

from __future__ import annotations

import argparse
import csv
import json

import pytest

from aioir import cli
from aioir.cli import evaluate as evaluate_cli

from ..evaluate import conftest as _trees

# the fixture trees of tests/evaluate, shared here
crops, paired_dir, promptir_tree = _trees.crops, _trees.paired_dir, _trees.promptir_tree


@pytest.fixture
def main():
    """``aioir.cli.main``."""
    return cli.main


def test_register_adds_the_command():
    parser = argparse.ArgumentParser(prog="aioir")
    evaluate_cli.register(parser.add_subparsers())
    args = parser.parse_args(
        ["evaluate", "--model", "classical:dcp", "--benchmark", "a", "--benchmark", "b"]
    )
    assert args.benchmark == ["a", "b"] and args.handler is not None and args.tile is None


def test_paired_benchmark_writes_json_and_csv(main, paired_dir, tmp_path, capsys):
    out_json, out_csv = tmp_path / "r.json", tmp_path / "r.csv"
    argv = [
        "evaluate",
        "--model",
        "classical:identity",
        "--benchmark",
        f"paired:{paired_dir}",
        "--json",
        str(out_json),
        "--csv",
        str(out_csv),
        "--no-progress",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "protocol clean: RGB" in out and "| mine | 3 |" in out
    doc = json.loads(out_json.read_text())
    (result,) = doc["results"]
    assert result["protocol"]["name"] == "clean" and len(result["images"]) == 3
    rows = list(csv.DictReader(out_csv.open()))
    assert [r["dataset"] for r in rows] == ["mine", "average_columns", "average_images"]


def test_promptir_tree_with_protocol_and_limit(main, promptir_tree, capsys):
    argv = [
        "evaluate",
        "--model",
        "classical:identity",
        "--benchmark",
        "promptir-3task",
        "--benchmark",
        "promptir-5task",
        "--data-root",
        str(promptir_tree),
        "--protocol",
        "basicsr-y",
        "--limit",
        "1",
        "--no-progress",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.count("protocol basicsr-y: Y (BT.601)") == 2
    assert "rounded to 8 bit" in out and "WARNING: limited to the first 1" in out
    assert "| GoPro | 1 (expected 1,111) |" in out


@pytest.mark.parametrize("ensemble", [None, "flips", "all"])
def test_network_model_runs_through_the_restorer(main, paired_dir, tmp_path, capsys, ensemble):
    out_json = tmp_path / "r.json"
    argv = [
        "evaluate",
        "--model",
        "restormer-tiny",
        "--allow-untrained",
        "--device",
        "cpu",
        "--benchmark",
        f"paired:{paired_dir}",
        "--no-progress",
        "--limit",
        "1",
        "--json",
        str(out_json),
        *(["--self-ensemble", ensemble] if ensemble else []),
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "### paired:" in out
    assert ("geometric self-ensemble" in out) == (ensemble is not None)
    (result,) = json.loads(out_json.read_text())["results"]
    assert result["settings"]["self_ensemble"] == ensemble


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--benchmark", "promptir-9task", "--data-root", "."], "unknown benchmark"),
        (["--benchmark", "promptir-3task"], "needs --data-root"),
        (["--benchmark", "promptir-3task", "--data-root", "/nonexistent/aio"], "does not exist"),
        (["--benchmark", "paired:/nonexistent/x"], "does not exist"),
        (
            ["--benchmark", "udair-source", "--data-root", ".", "--protocol", "psnr"],
            "unknown metric protocol",
        ),
        (["--benchmark", "paired:.", "--self-ensemble"], "apply to networks only"),
    ],
)
def test_errors_are_one_line_with_exit_1(main, capsys, argv, message):
    assert main(["evaluate", "--model", "classical:identity", *argv, "--no-progress"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("aioir: error:") and message in err and "\n" not in err


def test_short_counts_fail_with_the_columns_named(main, promptir_tree, capsys):
    argv = [
        "evaluate",
        "--model",
        "classical:identity",
        "--benchmark",
        "promptir-3task",
        "--data-root",
        str(promptir_tree),
        "--no-progress",
    ]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "rain100l has 2 images, expected 100" in err and "--no-strict-counts" in err
