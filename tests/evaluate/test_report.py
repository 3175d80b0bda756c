"""``aioir.evaluate.report``: mean ± sd over per-seed scores."""

from __future__ import annotations

import pytest


def test_mean_sd_over_seeds():
    from aioir.evaluate.report import format_mean_sd, mean_sd

    assert mean_sd([20.0, 22.0]) == pytest.approx((21.0, 2**0.5))
    assert mean_sd([20.0]) == (20.0, 0.0)
    assert format_mean_sd([20.0, 22.0]) == "21.00 ± 1.41"
    assert format_mean_sd([0.25], 3) == "0.250 ± 0.000"
    assert format_mean_sd([20.0], sd_of_one=False) == "20.00"
    assert format_mean_sd([]) == "–"
    assert format_mean_sd([20.0, float("nan")]) == "–"
