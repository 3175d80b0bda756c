"""``benchmarks/claims.py`` (UDAIR's claims at equal budget): a reduced run end to end."""

from __future__ import annotations

import json

import pytest

from helpers import load_benchmark, make_corpus


@pytest.mark.slow
def test_matched_restormer_is_the_closest_width():
    claims = load_benchmark("claims")
    from aioir.models import create_model

    udair = claims.used_parameters(create_model("udair-tiny"))
    model, dim = claims.matched_restormer(udair, "tiny")
    gap = abs(sum(p.numel() for p in model.parameters()) - udair)
    for other in (dim - 2, dim + 2):  # the neighbouring widths are farther from the count
        neighbour = create_model("restormer-tiny", dim=other)
        assert abs(sum(p.numel() for p in neighbour.parameters()) - udair) >= gap
    assert gap < 0.15 * udair


@pytest.mark.slow
def test_reduced_claims_run(tmp_path):
    claims = load_benchmark("claims")
    photos = make_corpus(tmp_path / "photos", n_train=3, n_val=5, size=(48, 48))
    out, raw = tmp_path / "claims.md", tmp_path / "claims.json"
    argv = ["--photos", str(photos), "--steps", "2", "--seeds", "0,1", "--tasks", "noise,haze",
            "--test-per-task", "5", "--crop", "32", "--out", str(out), "--json", str(raw),
            "--figures", str(tmp_path / "fig")]  # fmt: skip
    assert claims.main(argv) == 0
    text = out.read_text()
    assert "Claim 1" in text and "Claim 2" in text and "± " in text
    data = json.loads(raw.read_text())
    assert len(data["cscl"]) == len(data["no_cscl"]) == len(data["restormer"]) == 2
    assert 0.0 <= data["cscl"][0]["pooled"]["knn_accuracy"] <= 1.0
    assert (tmp_path / "fig" / "clusters-cscl.png").is_file()
