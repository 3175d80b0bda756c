"""``benchmarks/cpl_ablation.py`` (CPL's ablation at equal budget): rows, summary, a reduced run."""

from __future__ import annotations

import json

import pytest
import yaml

from helpers import load_benchmark, make_corpus


def test_rows_name_the_lambda_and_set_it_as_a_yaml_float():
    ab = load_benchmark("cpl_ablation")
    rows = ab.table_rows(["promptir", "spm+cpr-selffeat"], [1e-3, 1e-5])
    assert [r.name for r in rows] == [
        "promptir",
        "spm+cpr-selffeat λ=0.001",
        "spm+cpr-selffeat λ=1e-05",
    ]
    assert rows[2].slug == "spm+cpr-selffeat-l1e-05"
    assert rows[0].overrides() == ab.VARIANTS["promptir"]
    key, _, value = rows[2].overrides()[-1].partition("=")
    assert key == "losses.cpr-selffeat.weight"
    assert yaml.safe_load(value) == 1e-5  # a float, not the string '1e-05'


def test_default_lambda_is_the_configs():
    ab = load_benchmark("cpl_ablation")
    config = yaml.safe_load(ab.CONFIG.read_text())
    assert config["losses"][ab.CPR_LOSS]["weight"] == ab.DEFAULT_CPR_WEIGHT
    args = ab.build_parser().parse_args(["--data", "x"])
    assert args.cpr_weight == [ab.DEFAULT_CPR_WEIGHT] and not args.composite


def test_composite_scores_split_singles_and_composites():
    ab = load_benchmark("cpl_ablation")
    from aioir.evaluate.report import BenchmarkResult, ColumnSummary

    psnr = {"lowlight": 10.0, "haze": 12.0, "lowlight+haze": 20.0, "haze+noise": 30.0}
    columns = [ColumnSummary(k, k, k, 2, psnr=v, input_psnr=v - 1.0) for k, v in psnr.items()]
    result = BenchmarkResult("composite:x", "m", "clean", "h", columns, images=[])
    scores = ab.composite_scores(result)
    assert scores["all_psnr"] == pytest.approx(18.0)
    assert scores["mixed_psnr"] == pytest.approx(25.0)
    assert scores["single_psnr"] == pytest.approx(11.0)
    assert scores["input_mixed_psnr"] == pytest.approx(24.0)
    assert scores["columns"] == psnr


def _record(row: str, seed: int, psnr: float, comp: float) -> dict:
    return {"row": row, "seed": seed, "val_psnr": psnr, "val_ssim": 0.5, "wall_s": 10.0,
            "composite_all": comp, "composite_mixed": comp - 1.0}  # fmt: skip


def test_summary_pairs_each_row_with_promptir_seed_by_seed():
    ab = load_benchmark("cpl_ablation")
    records = [
        _record("promptir", 1, 20.0, 14.0),
        _record("spm", 1, 20.5, 14.25),
        _record("promptir", 2, 21.0, 15.0),
        _record("spm", 2, 20.9, 15.5),
        _record("spm", 3, 30.0, 30.0),  # no PromptIR run for seed 3: not paired
    ]
    summary = ab.summarise(records)
    assert list(summary) == ["promptir", "spm"]
    assert summary["promptir"]["val_psnr"]["mean"] == pytest.approx(20.5)
    assert summary["promptir"]["val_psnr"]["sd"] == pytest.approx(0.5**0.5)
    assert "paired_vs_promptir" not in summary["promptir"]
    paired = summary["spm"]["paired_vs_promptir"]
    assert paired["seeds"] == [1, 2]
    assert paired["val_psnr"] == pytest.approx([0.5, -0.1])
    assert paired["composite_mixed"] == pytest.approx([0.25, 0.5])
    args = ab.build_parser().parse_args(["--data", "x", "--composite"])
    text = ab.markdown(summary, args)
    assert "| spm | 1, 2 | +0.50, -0.10 (+0.20) | +0.25, +0.50 (+0.38) |" in text
    assert "| promptir | 1, 2 | 20.00, 21.00 | 20.50 ± 0.71 |" in text


@pytest.mark.slow
def test_reduced_run_keeps_runs_scores_composite_and_reuses(tmp_path):
    ab = load_benchmark("cpl_ablation")
    photos = make_corpus(tmp_path / "photos", n_train=2, n_val=2, size=(48, 48))
    out = tmp_path / "runs"
    argv = ["--data", str(photos), "--steps", "2", "--patch", "32", "--batch", "2",
            "--val-items", "1", "--seeds", "1", "--variants", "promptir", "spm+cpr-selffeat",
            "--cpr-weight", "0.1", "--composite", "--composite-crop", "32",
            "--composite-data", str(photos / "val"), "--out", str(out)]  # fmt: skip
    assert ab.main(argv) == 0
    run = out / "spm+cpr-selffeat-l0.1-seed1"
    assert (run / "export" / "model.safetensors").is_file()
    assert yaml.safe_load((run / "config.yaml").read_text())["losses"]["cpr-selffeat"]["weight"] == 0.1  # fmt: skip
    composite = json.loads((run / "composite-crop32.json").read_text())["results"][0]
    assert len(composite["columns"]) == 11
    doc = json.loads((out / "summary.json").read_text())
    assert list(doc["rows"]) == ["promptir", "spm+cpr-selffeat λ=0.1"]
    row = doc["rows"]["spm+cpr-selffeat λ=0.1"]
    assert len(row["paired_vs_promptir"]["composite_all"]) == 1
    assert row["composite_all"]["values"][0] == pytest.approx(
        sum(c["psnr"] for c in composite["columns"]) / 11
    )
    stamp = (run / "training.json").stat().st_mtime_ns
    assert ab.main(argv) == 0  # kept runs are reused, not retrained
    assert (run / "training.json").stat().st_mtime_ns == stamp
    assert all(r["reused"] for r in json.loads((out / "summary.json").read_text())["runs"])
    with pytest.raises(SystemExit, match="other settings"):
        ab.main([*argv, "--steps", "3"])
