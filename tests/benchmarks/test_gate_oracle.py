"""``benchmarks/gate_oracle.py``: a gate scored with its classifier's verdict and the true task."""

from __future__ import annotations

import json

import pytest
import torch

from aioir.engine.config import build_config
from aioir.engine.filter_bank import FilterBankFitConfig, FilterBankOptions, fit
from helpers import load_benchmark, make_corpus, tiny_filter_bank_fit_config
from udair_helpers import build_tiny_udair

CLASSES = ["a", "b", "c"]


def _head():
    from aioir.nn.degradation_classifier import DegradationClassifier
    from aioir.nn.filter_bank import RoutedClassifierFilterBankHead

    classifier = DegradationClassifier(CLASSES, widths=(4,), hidden=4)
    return RoutedClassifierFilterBankHead(
        feature_channels=2, context_channels=2, filters=2, taps=3, classifier=classifier
    )


def test_the_true_task_shows_what_an_uninformed_classifier_costs():
    """Three tasks whose best candidate is their own (30 dB, the others 20): the network terms
    are noise, so a gate whose classifier says nothing (uniform) cannot choose; told the true
    task it chooses right on the held-out half."""
    from aioir.nn.filter_bank import DETAIL_SIGMAS

    oracle = load_benchmark("gate_oracle")
    torch.manual_seed(0)
    n = 300
    kind = torch.arange(n) % 3
    tasks = [CLASSES[k] for k in kind.tolist()]
    network = torch.randn(n, 8 + 2 * (len(DETAIL_SIGMAS) + 2) + 1)
    scores = torch.full((n, 4), 20.0)  # output, input, 2 filters
    scores[torch.arange(n), kind] = 30.0
    uniform = torch.full((n, 3), -torch.log(torch.tensor(3.0)))
    told = oracle.true_task_terms(tasks, CLASSES)
    assert told.argmax(dim=1).tolist() == kind.tolist() and float(told.max()) == 0.0
    options = FilterBankOptions(gate_epochs=300, gate_lr=1e-2, gate_weight_decay=0.0)
    state = torch.get_rng_state()
    head = _head()
    held_out = torch.arange(n) % 2 == 1
    blind, knowing = (
        oracle.held_out_scores(
            head, torch.cat([network, terms], dim=1), scores, options, tasks, 0, state
        )[held_out].mean()
        for terms in (uniform, told)
    )
    assert knowing > 29.0 and blind < 25.0


def test_the_script_compares_a_fitted_models_classifier_with_the_true_task(tmp_path):
    corpus = make_corpus(tmp_path / "corpus")
    base = build_tiny_udair(tmp_path / "base")
    examples = tmp_path / "examples.safetensors"
    classifier = {"widths": [4, 8], "hidden": 8, "items_per_task": 6, "pale_items_per_task": 0,
                  "patch_size": 32, "min_crop": 16, "steps": 20, "batch_size": 8}  # fmt: skip
    raw = tiny_filter_bank_fit_config(
        corpus, base, gate_examples_file=str(examples), classifier=classifier, routed_gate=True
    )
    fit(build_config(FilterBankFitConfig, raw, "test"), tmp_path / "fitted")
    oracle = load_benchmark("gate_oracle")
    argv = ["--model", str(tmp_path / "fitted"), "--examples", str(examples), "--threads", "1"]
    out = oracle.main([*argv, "--json", str(tmp_path / "o.json")])
    assert [(r["kind"], r["task"], r["n"]) for r in out["rows"]] == [
        ("main", "noise", 2),
        ("main", "blur", 2),
    ]
    for row in out["rows"]:
        assert row["gap"] == pytest.approx(row["true task"] - row["classifier"], abs=0.011)
    assert json.loads((tmp_path / "o.json").read_text())["rows"] == out["rows"]
    # a model whose gate reads no classifier: a one-line refusal
    plain = {**raw, "filter_bank": {**raw["filter_bank"], "classifier": None,
                                    "routed_gate": False}}  # fmt: skip
    fit(build_config(FilterBankFitConfig, plain, "test"), tmp_path / "plain")
    with pytest.raises(SystemExit):
        oracle.main(["--model", str(tmp_path / "plain"), "--examples", str(examples)])
