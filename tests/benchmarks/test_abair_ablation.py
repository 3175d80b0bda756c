"""``benchmarks/abair_ablation.py`` (ABAIR at equal budget): the plan and a smoke run end to end."""

from __future__ import annotations

import json

import pytest

from helpers import load_benchmark, make_corpus


def _totals(steps: dict[str, int]) -> dict[str, int]:
    """Optimiser steps behind each ablation row (a row's runs chained)."""
    return {
        "task-only": steps["task-only"],
        **{v: steps[f"pre-{v}"] + steps[f"ft-{v}"] for v in ("synthetic", "cutmix", "seg")},
        "adapters": steps["pre-seg"] + steps["adapters"] + steps["estimator"],
        "promptir": steps["promptir"],
    }


def test_every_row_trains_the_same_steps(tmp_path):
    ablation = load_benchmark("abair_ablation")
    args = ablation.parse_args(["--data", str(tmp_path), "--out", str(tmp_path / "o"),
                                "--pretrain-steps", "7", "--adapter-steps", "5",
                                "--estimator-steps", "3"])  # fmt: skip
    runs = {r.name: r for r in ablation.plan(args)}
    assert set(_totals({k: r.steps for k, r in runs.items()}).values()) == {15}
    assert runs["jpeg-adapter"].steps == 5 and runs["jpeg-estimator"].steps == 3
    assert runs["composite-estimator"].steps == 3
    # phases start from the previous export by task name, full fine-tunes load the weights
    cmd = " ".join(ablation.command(runs["ft-cutmix"], 1, tmp_path, args))
    assert f"model.checkpoint={tmp_path / 'pre-cutmix' / 'export'}" in cmd
    cmd = " ".join(ablation.command(runs["adapters"], 1, tmp_path, args))
    assert f"abair.base={tmp_path / 'pre-seg' / 'export'}" in cmd
    # the task data is the benchmark's tier, the pre-training data every severity
    assert "data.severity=moderate" in ablation.command(runs["task-only"], 1, tmp_path, args)
    assert "data.severity=random" in ablation.command(runs["pre-seg"], 1, tmp_path, args)
    assert "data.cutmix=true" in ablation.command(runs["pre-cutmix"], 1, tmp_path, args)
    only = ablation.parse_args(["--data", str(tmp_path), "--out", "o", "--parts", "ablation"])
    assert {r.name for r in ablation.plan(only)}.isdisjoint(
        {"jpeg-adapter", "jpeg-estimator", "composite-estimator"}
    )


def test_mean_sd_formats_the_seeds():
    ablation = load_benchmark("abair_ablation")
    assert ablation.mean_sd([20.0, 22.0]) == "21.00 ± 1.41"
    assert ablation.mean_sd([20.0]) == "20.00"
    assert ablation.per_seed([20.0, 21.5]) == "20.00 / 21.50"


@pytest.mark.slow
def test_smoke_run(tmp_path):
    ablation = load_benchmark("abair_ablation")
    photos = make_corpus(tmp_path / "photos", n_train=3, n_val=3, size=(48, 48))
    out = tmp_path / "out"
    argv = ["--data", str(photos), "--bench", str(photos / "val"), "--out", str(out), "--smoke"]
    assert ablation.main([*argv, "--seeds", "1", "2"]) == 0
    data = json.loads((out / "abair_ablation.json").read_text())
    assert set(data["seeds"]) == {"1", "2"}
    for result in data["seeds"].values():
        steps = {k: v["steps"] for k, v in result["runs"].items()}
        assert len(set(_totals(steps).values())) == 1
        assert set(result["ablation"]) >= {"task-only", "seg", "adapters-oh", "adapters-sw",
                                           "adapters-oracle", "promptir"}  # fmt: skip
        assert set(result["ablation"]["seg"]["psnr"]) == set(ablation.TASKS)
        assert result["old_tasks"]["identical"]
        assert "jpeg" in result["jpeg"]["six-oracle"]["psnr"]
        assert "blur+noise" in result["composite"]["abair-sw"]["psnr"]
    text = (out / "abair_ablation.md").read_text()
    assert "± " in text and "identical on every seed" in text and "mean of the 11" in text
    # run again: every training is reused (same commands), only the scoring runs
    assert ablation.main([*argv, "--seeds", "1", "--parts", "ablation"]) == 0
    again = json.loads((out / "abair_ablation.json").read_text())["seeds"]["1"]
    assert all(r["reused"] for r in again["runs"].values())
    assert again["ablation"]["seg"]["psnr"] == data["seeds"]["1"]["ablation"]["seg"]["psnr"]
