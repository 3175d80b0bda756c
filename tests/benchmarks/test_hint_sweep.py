"""``benchmarks/hint_sweep.py``: hint rules scored from ``bar_oracle.py`` rows."""

from __future__ import annotations

import json

import pytest

from helpers import load_benchmark


def _crop(blind, told, probabilities, changes, input_db=20.0):
    return {"input": input_db, "blind": blind, "told_as": told, "probabilities": probabilities,
            "changes": changes}  # fmt: skip


ROWS = [
    {"column": "haze", "per_crop": [
        _crop(20.0, {"haze": 26.0, "rain": 15.0, "clean": 20.0},
              {"haze": 0.8, "rain": 0.1, "clean": 0.1}, {"haze": 0.9, "rain": 0.9, "clean": 0.0}),
        _crop(22.0, {"haze": 24.0, "rain": 10.0, "clean": 22.0},
              {"haze": 0.55, "rain": 0.05, "clean": 0.4}, {"haze": 0.6, "rain": 0.9, "clean": 0.0}),
    ]},
    {"column": "clean", "per_crop": [
        _crop(60.0, {"haze": 30.0, "rain": 35.0, "clean": 60.0},
              {"haze": 0.1, "rain": 0.7, "clean": 0.2}, {"haze": 0.9, "rain": 0.9, "clean": 0.0},
              input_db=100.0),
    ]},
]  # fmt: skip


def test_a_rule_follows_its_hints_and_scores_the_floored_gain(tmp_path, capsys):
    sweep = load_benchmark("hint_sweep")
    from aioir.models.filter_bank import NEVER_SUGGESTED

    default = sweep.HintRule(0.5, 0.7, NEVER_SUGGESTED)
    assert [default.hint(c) for r in ROWS for c in r["per_crop"]] == ["haze", None, None]
    loose = sweep.HintRule(0.5, 0.5, frozenset({"clean"}))
    assert [loose.hint(c) for r in ROWS for c in r["per_crop"]] == ["haze", "haze", "rain"]
    assert sweep.followed_gain(ROWS, None) == (pytest.approx(1.0), 0)  # haze 21 over 20
    assert sweep.followed_gain(ROWS, default) == (pytest.approx(4.0), 1)  # haze 24 over 20
    # haze 25 over 20; the clean column (35 dB) falls 5 dB under its 40-dB floor
    assert sweep.followed_gain(ROWS, loose) == (pytest.approx(0.0), 3)

    path = tmp_path / "oracle-crops.json"
    path.write_text(json.dumps({"rows": ROWS}))
    out = sweep.main([str(path), "--changes", "0.5,0.7", "--never", "clean",
                      "--json", str(tmp_path / "s.json")])  # fmt: skip
    assert [r["mean"] for r in out] == [pytest.approx(1.0), pytest.approx(0.0), -1.0]
    assert out[1]["hints"] == {"oracle-crops": 3} and out[0]["rule"] == "blind"
    assert "change ≥ 0.7, never clean" in capsys.readouterr().out
    assert json.loads((tmp_path / "s.json").read_text()) == out
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(SystemExit):
        sweep.main([str(bad)])
