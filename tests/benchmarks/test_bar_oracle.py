"""``benchmarks/bar_oracle.py``: per-crop candidate scores, the oracle, blind and told mixes,
and the blind one with its hint followed."""

from __future__ import annotations

import json

import pytest

from aioir.engine.config import build_config
from aioir.engine.filter_bank import FilterBankFitConfig, fit
from aioir.evaluate.benchmarks import get_benchmark
from aioir.evaluate.methods import load_method
from aioir.evaluate.runner import evaluate
from helpers import load_benchmark, make_corpus, tiny_filter_bank_fit_config
from udair_helpers import build_tiny_udair


def test_the_oracle_bounds_every_candidate_and_the_blind_mix_is_what_evaluate_scores(
    tmp_path, capsys
):
    corpus = make_corpus(tmp_path / "corpus")
    base = build_tiny_udair(tmp_path / "base")
    classifier = {"widths": [4, 8], "hidden": 8, "items_per_task": 6, "pale_items_per_task": 0,
                  "patch_size": 32, "min_crop": 16, "steps": 20, "batch_size": 8}  # fmt: skip
    raw = tiny_filter_bank_fit_config(
        corpus, base, classifier=classifier, routed_gate=True, told_gate=True
    )
    fit(build_config(FilterBankFitConfig, raw, "test"), tmp_path / "fitted")
    oracle = load_benchmark("bar_oracle")
    argv = ["--model", str(tmp_path / "fitted"), "--photos", str(corpus / "val"),
            "--columns", "s25,motion-blur", "--limit", "2", "--crop", "32", "--threads", "1"]  # fmt: skip
    out = oracle.main([*argv, "--per-crop", "--json", str(tmp_path / "o.json")])
    printed = capsys.readouterr().out
    assert [(r["column"], r["crops"]) for r in out["rows"]] == [("s25", 2), ("motion-blur", 2)]
    for row in out["rows"]:
        assert row["told_gate"] is True
        assert all(score <= row["oracle"] + 1e-6 for score in row["alone"].values())
        assert sum(row["best_on"].values()) == row["crops"]
        assert row["alone"]["input"] == pytest.approx(row["input"], abs=0.011)
        crops = row["per_crop"]
        assert all(c["name"] in printed for c in crops)  # --per-crop prints every crop
        assert len({c["name"] for c in crops}) == row["crops"]  # one row per crop
        for key in ("input", "blind", "told", "oracle", "hinted"):
            assert sum(c[key] for c in crops) / len(crops) == pytest.approx(row[key], abs=0.011)
        assert row["hints"] == sum(c["hint"] is not None for c in crops)
        assert row["followed"] == sum(c["hint_sure"] for c in crops) <= row["hints"]
        for crop in crops:  # hinted: told the hinted task where a hint is sure, else blind
            sure = crop["hint"] and crop["hint_sure"]
            hinted = crop["told_as"][crop["hint"]] if sure else crop["blind"]
            assert crop["hinted"] == pytest.approx(hinted, abs=0.011)
            probabilities = crop["probabilities"]
            assert set(probabilities) == set(crop["told_as"]) and len(probabilities) > 1
            assert sum(probabilities.values()) == pytest.approx(1.0, abs=0.01)
            assert crop["oracle"] >= crop["input"] - 0.01  # the input is a candidate
    assert json.loads((tmp_path / "o.json").read_text())["rows"] == out["rows"]
    scored = evaluate(
        load_method(str(tmp_path / "fitted")), f"photo-tasks:{corpus / 'val'}:s25,motion-blur",
        crop=32, limit=2, progress=False,
    )  # fmt: skip
    for column, row in zip(scored.columns, out["rows"], strict=True):
        assert column.psnr == pytest.approx(row["blind"], abs=0.011)
    with pytest.raises(SystemExit):
        oracle.main([*argv[:4], "--columns", "snow"])

    # whole photos (sides not multiples of the model's), as `aioir evaluate --whole-side` scores
    # them; each crop's `changes` is what the hint rule reads
    from aioir.models.filter_bank import SUGGEST_MIN_CHANGE, SUGGEST_MIN_PROBABILITY

    whole = oracle.main([*argv[:6], "--limit", "2", "--whole-side", "36", "--threads", "1"])
    assert whole["whole_side"] == 36 and whole["rendering"] is None
    bench = get_benchmark(f"photo-tasks:{corpus / 'val'}:s25,motion-blur", whole_side=36)
    scored = evaluate(load_method(str(tmp_path / "fitted")), bench, limit=2, progress=False)
    for column, row in zip(scored.columns, whole["rows"], strict=True):
        assert column.psnr == pytest.approx(row["blind"], abs=0.011)
        for crop in row["per_crop"]:
            assert set(crop["changes"]) == set(crop["probabilities"])
            assert all(0.0 <= v <= 1.0 + 1e-6 for v in crop["changes"].values())
            if crop["hint"]:
                assert crop["probabilities"][crop["hint"]] >= SUGGEST_MIN_PROBABILITY - 0.001
                assert crop["changes"][crop["hint"]] >= SUGGEST_MIN_CHANGE - 0.001
