"""``benchmarks/classifier_curve.py``: a classifier's reading of the bar and val sets, one class
against the rest, from a saved model or a fit's parts file."""

from __future__ import annotations

import json

import pytest
import torch

from aioir.engine.config import build_config
from aioir.engine.filter_bank import FilterBankFitConfig, fit, stored_classifier
from aioir.errors import ConfigError
from aioir.models import load_model
from helpers import load_benchmark, make_corpus, tiny_filter_bank_fit_config
from udair_helpers import build_tiny_udair


def test_auc_counts_pairs_ordered_right_and_ties_as_half():
    curve = load_benchmark("classifier_curve")
    assert curve.auc([0.9, 0.8], [0.1, 0.2]) == 1.0
    assert curve.auc([0.1], [0.9]) == 0.0
    assert curve.auc([0.5, 0.9], [0.5, 0.1]) == pytest.approx((0.5 + 1 + 1 + 1) / 4)


def test_a_parts_files_classifier_reads_as_the_fitted_heads_and_every_set_is_read(tmp_path, capsys):
    corpus = make_corpus(tmp_path / "corpus")
    base = build_tiny_udair(tmp_path / "base")
    classifier = {"widths": [4, 8], "hidden": 8, "items_per_task": 6, "pale_items_per_task": 0,
                  "patch_size": 32, "min_crop": 16, "steps": 20, "batch_size": 8}  # fmt: skip
    parts = tmp_path / "parts.safetensors"
    raw = tiny_filter_bank_fit_config(corpus, base, classifier=classifier,
                                      parts_file=str(parts))  # fmt: skip
    fit(build_config(FilterBankFitConfig, raw, "test"), tmp_path / "fitted")

    stored, record = stored_classifier(parts)
    shipped = load_model(str(tmp_path / "fitted")).filter_bank.classifier
    x = torch.rand(2, 3, 40, 40, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(stored(x), shipped(x), atol=1e-6)
    assert record["options"]["steps"] == 20 and list(stored.classes) == record["classes"]

    curve = load_benchmark("classifier_curve")
    argv = ["--classifier", f"model={tmp_path / 'fitted'}", "--classifier", f"parts={parts}",
            "--bar", str(corpus / "val"), "--limit-bar", "2", "--photos", str(corpus / "val"),
            "--limit", "1", "--sets", "val crops,val pale", "--target", "blur",
            "--threads", "1", "--json", str(tmp_path / "c.json")]  # fmt: skip
    out = curve.main(argv)
    rows = {(r["classifier"], r["set"]): r for r in out["rows"]}
    assert set(rows) == {
        (c, s) for c in ("model", "parts") for s in ("bar", "val crops", "val pale")
    }
    for s in ("bar", "val crops", "val pale"):
        model, parts_row = rows["model", s], rows["parts", s]
        assert model["readings"] == pytest.approx(parts_row["readings"], abs=1e-4)
        assert model["accuracy"] == parts_row["accuracy"]
        assert 0.0 <= model["accuracy"] <= 1.0 and 0.0 <= model["auc"] <= 1.0
        assert model["sure"] == sum(p >= 0.9 for p in model["readings"]) / len(model["readings"])
        assert model["false_sure"] == len(model["false_sure_crops"])
    assert rows["model", "bar"]["crops"] == 10 * 2  # the bar's ten columns, two photos each
    assert len(rows["model", "bar"]["readings"]) == 2  # the motion-blur column's
    assert json.loads((tmp_path / "c.json").read_text())["rows"] == out["rows"]
    assert "val pale" in capsys.readouterr().out


def test_bad_sources_are_one_line_errors(tmp_path, capsys):
    curve = load_benchmark("classifier_curve")
    with pytest.raises(SystemExit) as exit_:
        curve.main(["--classifier", "no-label", "--bar", "x"])
    assert exit_.value.code == 2
    empty = tmp_path / "empty.safetensors"
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(1)}, str(empty))
    with pytest.raises(ConfigError, match="holds no classifier"):
        stored_classifier(empty)
    with pytest.raises(SystemExit) as exit_:
        curve.main(["--classifier", f"a={empty}", "--bar", str(tmp_path)])
    assert exit_.value.code == 2
    assert "holds no classifier" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="no such parts file"):
        stored_classifier(tmp_path / "missing.safetensors")
