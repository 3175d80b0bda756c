"""The harness: its numbers equal an independent per-image computation; counts, NIQE, outputs."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from torch import nn

from aioir.degradations import make_generator, seed_from_name
from aioir.degradations.noise import GaussianNoise
from aioir.errors import ConfigError, DatasetLayoutError
from aioir.evaluate.benchmarks import BENCHMARKS
from aioir.evaluate.methods import ClassicalModel, NetworkModel, load_method
from aioir.evaluate.niqe import fit_niqe_model
from aioir.evaluate.report import (
    BenchmarkResult,
    comparison_markdown,
    to_markdown,
    write_csv,
    write_json,
)
from aioir.evaluate.runner import default_noise_rounding, evaluate
from aioir.io import list_images, read_image
from aioir.metrics import psnr, ssim
from aioir.metrics.protocols import center_crop_to_multiple

from .test_benchmarks import THREE_TASK_FIXTURE


class TinyNet(nn.Module):
    """A fixed 3×3 conv residual net: deterministic, not the identity."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        nn.init.normal_(self.conv.weight, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x)


def _hwc(x: torch.Tensor) -> np.ndarray:
    return x.detach().float().permute(1, 2, 0).numpy()


def _reference_promptir(net: nn.Module, clean: np.ndarray, degraded: np.ndarray):
    """PromptIR protocol by hand: centre-crop to ×16, restore, clip, PSNR + 7×7 uniform SSIM."""
    degraded = center_crop_to_multiple(degraded, 16)
    with torch.no_grad():
        x = torch.from_numpy(np.ascontiguousarray(degraded)).permute(2, 0, 1)[None]
        out = net(x)[0].clamp(0, 1)
    pred = _hwc(out)
    tgt = center_crop_to_multiple(np.clip(clean, 0, 1), 16)
    return psnr(pred, tgt, data_range=1.0), ssim(pred, tgt, data_range=1.0, window="uniform")


def test_harness_equals_an_independent_per_image_computation(promptir_tree):
    net = TinyNet().eval()
    bench = BENCHMARKS["promptir-3task"].with_counts(THREE_TASK_FIXTURE)
    result = evaluate(NetworkModel(net, device="cpu"), bench, promptir_tree, progress=False)
    assert result.protocol == "promptir"
    assert result.settings["noise_rounding"] == "truncate" == default_noise_rounding("promptir")

    expected: dict[str, dict[str, tuple[float, float]]] = {}
    for sigma in (15, 25, 50):  # noisy CBSD68, recomputed from the files
        per = {}
        for path in list_images(promptir_tree / "test/denoise/bsd68"):
            clean = read_image(path)
            gen = make_generator(seed_from_name(path.name, sigma))
            noisy = GaussianNoise(sigma, rounding="truncate")(clean, seed=gen)
            per[path.name] = _reference_promptir(net, clean, noisy)
        expected[f"bsd68-s{sigma}"] = per
    for key, folder in (("rain100l", "test/derain/Rain100L"), ("sots", "test/dehaze")):
        per = {}
        for path in list_images(promptir_tree / folder / "input"):
            stem = path.stem.split("_")[0]
            target = next((promptir_tree / folder / "target").glob(stem + ".*"))
            per[path.name] = _reference_promptir(net, read_image(target), read_image(path))
        expected[key] = per

    got = {(r.dataset, r.name): (r.psnr, r.ssim) for r in result.images}
    assert len(got) == 13
    for key, per in expected.items():
        for name, (p, s) in per.items():
            assert got[(key, name)] == pytest.approx((p, s), abs=1e-5)
    col_means = {
        key: (np.mean([v[0] for v in per.values()]), np.mean([v[1] for v in per.values()]))
        for key, per in expected.items()
    }
    for c in result.columns:
        assert (c.psnr, c.ssim) == pytest.approx(col_means[c.key], abs=1e-5)
    avg_cols = result.average("columns")
    assert avg_cols["psnr"] == pytest.approx(np.mean([m[0] for m in col_means.values()]), abs=1e-5)
    all_psnr = [v[0] for per in expected.values() for v in per.values()]
    assert result.average("images")["psnr"] == pytest.approx(np.mean(all_psnr), abs=1e-5)
    assert result.average("images")["psnr"] != pytest.approx(avg_cols["psnr"], abs=1e-6)


def test_same_inputs_for_every_method_and_run(promptir_tree):
    bench = BENCHMARKS["promptir-3task"].with_counts(THREE_TASK_FIXTURE)
    ident = ClassicalModel("identity")
    a = evaluate(ident, bench, promptir_tree, progress=False, protocol="clean")
    b = evaluate(ident, bench, promptir_tree, progress=False, protocol="clean")
    assert [(r.name, r.psnr, r.ssim) for r in a.images] == [
        (r.name, r.psnr, r.ssim) for r in b.images
    ]
    assert a.settings["noise_rounding"] == "round"


def test_strict_counts_fail_before_any_work_and_limit_warns(promptir_tree):
    calls = []

    class Spy(ClassicalModel):
        def restore(self, image, case):
            calls.append(case.name)
            return super().restore(image, case)

    with pytest.raises(DatasetLayoutError, match=r"expected 804 \(pass --no-strict-counts"):
        evaluate(Spy("identity"), "promptir-3task", promptir_tree, progress=False)
    assert calls == []
    result = evaluate(Spy("identity"), "promptir-3task", promptir_tree, limit=1, progress=False)
    assert [c.n for c in result.columns] == [1] * 5 and len(calls) == 5
    assert any("not comparable" in w for w in result.warnings)
    assert any("expected 804" in w for w in result.warnings)
    loose = evaluate(
        ClassicalModel("identity"),
        "promptir-3task",
        promptir_tree,
        strict_counts=False,
        progress=False,
    )
    assert len(loose.images) == 13 and loose.warnings


def test_udair_target_scores_niqe_without_ground_truth(udair_tree, crops):
    model = fit_niqe_model([crops(i, 96, 96) for i in range(6)], patch_size=16)
    result = evaluate(
        ClassicalModel("identity"), "udair-target", udair_tree, niqe_model=model, progress=False
    )
    by_key = {c.key: c for c in result.columns}
    assert by_key["low-light_lime"].psnr is None and by_key["low-light_lime"].niqe is not None
    assert by_key["denoising_polyu"].psnr is not None and by_key["denoising_polyu"].niqe is None
    assert result.average("columns")["niqe"] == pytest.approx(
        np.mean([by_key["low-light_lime"].niqe, by_key["dehazing_urhi"].niqe])
    )
    text = to_markdown(result)
    assert "NIQE ↓" in text and "protocol udair:" in text
    every = evaluate(
        ClassicalModel("identity"),
        "udair-target",
        udair_tree,
        niqe_model=model,
        niqe_mode="all",
        progress=False,
    )
    assert all(r.niqe is not None for r in every.images)


def test_classical_auto_notes_say_which_method_and_sigma(promptir_tree):
    bench = BENCHMARKS["promptir-3task"].with_counts(THREE_TASK_FIXTURE)
    result = evaluate(load_method("classical:auto"), bench, promptir_tree, limit=1, progress=False)
    notes = {c.key: " ".join(c.notes) for c in result.columns}
    assert "dark channel" in notes["sots"]
    assert "CBM3D" in notes["bsd68-s25"] and "σ given by the benchmark" in notes["bsd68-s25"]
    assert "labelled baseline" in notes["rain100l"]
    assert "Method notes" in to_markdown(result)


def test_outputs_json_csv_markdown_and_saved_images(paired_dir, tmp_path):
    net = NetworkModel(TinyNet().eval(), device="cpu")
    result = evaluate(net, f"paired:{paired_dir}", save_images=tmp_path / "out", progress=False)
    assert result.protocol == "clean" and len(result.images) == 3
    saved = sorted((tmp_path / "out").rglob("*.png"))
    assert [p.name for p in saved] == ["p0.png", "p1.png", "p2.png"]
    text = to_markdown(result)
    assert text.splitlines()[2].startswith("protocol clean: RGB")
    assert "Average over datasets" in text and "Average over images" in text

    ident = evaluate(ClassicalModel("identity"), f"paired:{paired_dir}", progress=False)
    j = write_json(tmp_path / "r.json", [result, ident])
    doc = json.loads(j.read_text())
    assert doc["results"][0]["protocol"]["header"] == result.header
    assert len(doc["results"][0]["images"]) == 3
    again = BenchmarkResult.from_dict(doc["results"][1])
    assert again.average("images") == ident.average("images")
    rows = list(csv.DictReader(write_csv(tmp_path / "r.csv", [result, ident]).open()))
    assert len(rows) == 2 * (1 + 2) and {r["protocol"] for r in rows} == {"clean"}
    assert float(rows[0]["psnr"]) == pytest.approx(result.columns[0].psnr)
    table = comparison_markdown([result, ident])
    assert table.count("protocol clean:") == 1 and "| classical:identity |" in table


def test_json_is_strict_when_an_output_equals_its_reference(tmp_path):
    """Identity on clean inputs has PSNR +∞; the JSON report writes it as null (no traceback)."""
    from aioir.io import write_image

    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png"):
        write_image(tmp_path / "clean" / name, rng.random((16, 16, 3)).astype(np.float32))
    bench = f"synthetic:{tmp_path / 'clean'}:clean"
    ident = evaluate(ClassicalModel("identity"), bench, progress=False)
    assert all(im.psnr == float("inf") for im in ident.images)
    doc = json.loads(write_json(tmp_path / "r.json", [ident]).read_text())
    assert [im["psnr"] for im in doc["results"][0]["images"]] == [None, None]
    assert doc["results"][0]["columns"][0]["ssim"] == pytest.approx(1.0)


def test_tables_show_the_degraded_input_beside_the_method(paired_dir, tmp_path):
    """issue 22: every table puts the input's own scores (and the gain) beside the method's."""
    from aioir.metrics import get_protocol

    result = evaluate(NetworkModel(TinyNet().eval(), device="cpu"), f"paired:{paired_dir}",
                      progress=False)  # fmt: skip
    proto = get_protocol("clean")
    for row in result.images:
        stem = row.name.rsplit(".", 1)[0]
        degraded = read_image(next((paired_dir / "input").glob(stem + ".*")))
        clean = read_image(next((paired_dir / "target").glob(stem + ".*")))
        expected = proto.score(degraded, clean)
        assert (row.input_psnr, row.input_ssim) == pytest.approx(
            (expected["psnr"], expected["ssim"]), abs=1e-6
        )
    (column,) = result.columns
    gains = [r.psnr - r.input_psnr for r in result.images]
    assert column.psnr_gain == pytest.approx(np.mean(gains))
    assert result.psnr_gain("images") == pytest.approx(np.mean(gains))
    text = to_markdown(result)
    assert "| Dataset | Images | Input PSNR | PSNR ↑ | Gain (dB) | Input SSIM | SSIM ↑ |" in text
    assert f"| {column.input_psnr:.2f} | {column.psnr:.2f} | {column.psnr_gain:+.2f} |" in text

    ident = evaluate(ClassicalModel("identity"), f"paired:{paired_dir}", progress=False)
    assert ident.columns[0].psnr_gain == pytest.approx(0.0, abs=1e-9)
    table = comparison_markdown([result, ident])
    lines = table.splitlines()
    first = next(i for i, ln in enumerate(lines) if ln.startswith("|---"))
    assert lines[first + 1].startswith("| degraded input | ")
    assert lines[first + 1].split("|")[2:] == lines[first + 3].split("|")[2:]  # = identity
    rows = list(csv.DictReader(write_csv(tmp_path / "r.csv", [result]).open()))
    assert float(rows[0]["input_psnr"]) == pytest.approx(column.input_psnr)
    assert float(rows[0]["psnr_gain"]) == pytest.approx(column.psnr_gain)
    again = BenchmarkResult.from_dict(json.loads(write_json(tmp_path / "r.json", [result])
                                                 .read_text())["results"][0])  # fmt: skip
    assert again.columns[0].input_psnr == pytest.approx(column.input_psnr)


def test_clean_inputs_score_infinity_and_show_no_gain(tmp_path):
    from aioir.io import write_image

    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png"):
        write_image(tmp_path / "clean" / name, rng.random((16, 16, 3)).astype(np.float32))
    net = NetworkModel(TinyNet().eval(), device="cpu")
    result = evaluate(net, f"synthetic:{tmp_path / 'clean'}:clean", progress=False)
    (column,) = result.columns
    assert column.input_psnr == float("inf") and column.psnr_gain is None
    assert f"| ∞ | {column.psnr:.2f} | – |" in to_markdown(result)


class OptionNet(TinyNet):
    """TinyNet with inference options: records every call; ``gain`` scales the residual."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[dict] = []
        self.gain = 1.0

    def set_inference_options(self, **options) -> None:
        self.calls.append(dict(options))
        self.gain = float(options.get("gain", 1.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.gain * self.conv(x)


def test_model_options_reach_the_network_and_case_means_each_cases_task(clean_dir):
    from aioir.evaluate.benchmarks import get_benchmark

    bench = get_benchmark(f"composite:{clean_dir}:haze,lowlight+haze", crop=32)
    net = OptionNet().eval()
    method = load_method(net, device="cpu", model_options={"gain": 0.0, "task": "case"})
    result = evaluate(method, bench, limit=2, progress=False)
    # set before the first case of each column, not again while the task stays the same
    assert net.calls == [{"gain": 0.0, "task": "haze"}, {"gain": 0.0, "task": "lowlight+haze"}]
    assert all(abs(c.psnr - c.input_psnr) < 1e-9 for c in result.columns)  # gain 0: identity
    assert result.settings["model_options"] == {"gain": 0.0, "task": "case"}
    assert "model options: gain = 0.0, task = each case's task" in result.notes

    fixed = OptionNet().eval()
    load_method(fixed, device="cpu", model_options={"gain": 2.0})
    assert fixed.calls == [{"gain": 2.0}]  # static options: once, when loading


def test_model_options_are_refused_where_they_cannot_apply():
    with pytest.raises(ConfigError, match="takes no inference options"):
        load_method(TinyNet().eval(), device="cpu", model_options={"task": "case"})
    with pytest.raises(ConfigError, match="apply to networks only"):
        load_method("classical:identity", model_options={"adapter_mode": "soft"})


def test_follow_hint_scores_the_hinted_restoration_and_notes_it(clean_dir):
    """``follow_hint``: each image the model hinted on is scored as restored told the hinted
    task (the note names it, the settings record it); refused by classical methods and with
    the task given."""
    from aioir.evaluate.benchmarks import get_benchmark
    from helpers import hinting_filter_bank

    bench = get_benchmark(f"synthetic:{clean_dir}:haze", crop=32)
    told = evaluate(
        load_method(hinting_filter_bank(), device="cpu", model_options={"task": "haze"}),
        bench,
        progress=False,
    )
    followed = evaluate(
        load_method(hinting_filter_bank(), device="cpu", follow_hint=True), bench, progress=False
    )
    blind = evaluate(load_method(hinting_filter_bank(), device="cpu"), bench, progress=False)
    (t,), (f,), (b,) = told.columns, followed.columns, blind.columns
    assert f.psnr == pytest.approx(t.psnr) and f.psnr != pytest.approx(b.psnr)
    assert [r.note for r in followed.images] == ["followed its hint: haze"] * 3
    assert f.notes == ["followed its hint: haze"] and b.notes == []
    assert followed.settings["follow_hint"] is True and "follow_hint" not in blind.settings
    with pytest.raises(ConfigError, match="networks only"):
        load_method("classical:dcp", follow_hint=True)
    with pytest.raises(ConfigError, match="task is given"):
        load_method(hinting_filter_bank(), device="cpu", follow_hint=True,
                    model_options={"task": "case"})  # fmt: skip


def test_case_task_reaches_a_wrapper_that_takes_it(clean_dir):
    """A filter-bank head with a routed gate is told each case's task (the oracle routing)."""
    from aioir.evaluate.benchmarks import get_benchmark
    from aioir.models import FilterBankRestorer, create_model
    from aioir.nn.degradation_classifier import DegradationClassifier

    torch.manual_seed(0)
    classifier = DegradationClassifier(["haze", "lowlight", "clean"], widths=(4, 6), hidden=8)
    model = FilterBankRestorer(
        create_model("udair-tiny"), filters=2, taps=3, classifier=classifier, routed_gate=True
    ).eval()
    bench = get_benchmark(f"composite:{clean_dir}:haze,lowlight+haze", crop=32)
    method = load_method(model, device="cpu", model_options={"task": "case"})
    told: list[list[int]] = []
    forward = model.filter_bank.forward

    def record(*args, **kwargs):
        told.append(model.filter_bank.given_classes)
        return forward(*args, **kwargs)

    model.filter_bank.forward = record
    evaluate(method, bench, limit=1, progress=False)
    assert told == [[0], [0, 1]]
