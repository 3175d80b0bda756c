"""Validation scores per task: gains over the input, identity tasks, the worst gain."""

from __future__ import annotations

import pytest
import torch

from aioir.engine.validation import PSNR_CAP, ValidationScores, summarize_validation
from aioir.metrics import get_protocol


def test_scores_per_task_with_gains_and_identity_tasks_left_out_of_min_gain():
    g = torch.Generator().manual_seed(0)
    target = torch.rand(4, 3, 24, 24, generator=g)
    noisy = (target + 0.1 * torch.randn(target.shape, generator=g)).clamp(0, 1)
    better = (target + 0.02 * torch.randn(target.shape, generator=g)).clamp(0, 1)
    scores = ValidationScores(3, get_protocol("clean"))
    # task 0 improves, task 1 gets worse, task 2 is an identity task (input = target)
    inputs = torch.cat([noisy[:2], better[2:]])
    pred = torch.cat([better[:2], noisy[2:]])
    scores.add(pred, target, inputs, [0, 0, 1, 1])
    scores.add(target[:2], target[:2], target[:2], torch.tensor([2, 2]))
    assert scores.sums[:, 2].tolist() == [2, 2, 2]
    result = summarize_validation(scores.sums, ["noise", "blur", "clean"])
    assert result["val/noise/gain"] > 5 and result["val/blur/gain"] < -5
    assert result["val/clean/psnr"] == PSNR_CAP and "val/clean/gain" not in result
    assert result["val/min_gain"] == result["val/blur/gain"]
    means = [result[f"val/{t}/psnr"] for t in ("noise", "blur", "clean")]
    assert result["val/psnr"] == pytest.approx(sum(means) / 3)
    assert summarize_validation(torch.zeros(2, 4, dtype=torch.float64), ["a", "b"]) == {}


def test_floored_gain_is_the_mean_gain_less_every_db_under_a_floor():
    # rows: output PSNR sum, SSIM sum, count, input PSNR sum (one image per task)
    sums = torch.tensor(
        [
            [30.0, 0.9, 1, 25.0],  # noise: +5
            [33.0, 0.9, 1, 34.0],  # blur: −1 (1 dB under the 0-dB floor)
            [37.5, 0.9, 1, PSNR_CAP],  # clean: identity task, 2.5 dB under the 40-dB floor
        ],
        dtype=torch.float64,
    )
    result = summarize_validation(sums, ["noise", "blur", "clean"])
    assert result["val/mean_gain"] == pytest.approx(2.0)
    assert result["val/floored_gain"] == pytest.approx(2.0 - 1.0 - 2.5)
    sums[1, 0], sums[2, 0] = 35.0, 45.0  # every task above its floor: the mean gain itself
    result = summarize_validation(sums, ["noise", "blur", "clean"])
    assert (
        result["val/floored_gain"] == pytest.approx(result["val/mean_gain"]) == pytest.approx(3.0)
    )
