"""``benchmarks/replacement_check.py``: the replacement rule judged from evaluate results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import load_benchmark


def _results(path: Path, cases: dict[str, list[tuple[float, float | None]]]) -> str:
    """An ``aioir evaluate --json`` file: per column, (PSNR, input PSNR) of each photo."""
    columns, images = [], []
    for key, rows in cases.items():
        inputs = [p0 for _, p0 in rows]
        columns.append({
            "key": key, "psnr": sum(p for p, _ in rows) / len(rows),
            "input_psnr": None if inputs[0] is None else sum(inputs) / len(inputs),
        })  # fmt: skip
        images += [{"dataset": key, "name": f"p{i}.png", "psnr": p, "input_psnr": p0}
                   for i, (p, p0) in enumerate(rows)]  # fmt: skip
    path.write_text(json.dumps({"results": [{"columns": columns, "images": images}]}))
    return str(path)


def test_a_candidate_is_judged_by_the_bar_the_pooled_whole_photos_and_wrecks(tmp_path, capsys):
    check = load_benchmark("replacement_check")
    bar_old = _results(tmp_path / "bo.json", {"haze": [(20.0, 15.0)], "clean": [(45.0, None)]})
    bar_new = _results(tmp_path / "bn.json", {"haze": [(21.0, 15.0)], "clean": [(45.0, None)]})
    # 3 whole photos: the candidate is better on two by 2 dB and wrecks the third (−12 dB)
    whole_old = _results(tmp_path / "wo.json", {"blur": [(31.0, 30.0)] * 3})
    whole_new = _results(tmp_path / "wn.json", {"blur": [(32.0, 30.0)] * 2 + [(18.0, 30.0)]})
    samples_old = _results(tmp_path / "so.json", {"rain": [(25.0, 20.0)]})
    samples_new = _results(tmp_path / "sn.json", {"rain": [(26.0, 20.0)]})
    argv = ["--bar", bar_old, bar_new, "--whole", whole_old, whole_new,
            "--whole", samples_old, samples_new]  # fmt: skip
    assert check.main(argv) == 1
    out = capsys.readouterr().out
    assert "1. bar floored gain: shipped +5.00, candidate +6.00 — beats" in out
    # photo-weighted: shipped (3·1 + 1·5)/4 = 2.00; the candidate's blur column 32, 32, 18 →
    # gain −2.67, floored −5.33, so (3·(−5.33) + 1·6)/4 = −2.50
    assert "2. whole-photo floored gain (4 photos): shipped +2.00, candidate -2.50" in out
    assert "3. wrecked photos: shipped 0, candidate 1 — more" in out
    assert "candidate: blur/p2.png (18.00 ← 30.00)" in out
    assert out.strip().endswith("does not replace the shipped model")

    fixed = _results(tmp_path / "wf.json", {"blur": [(32.0, 30.0)] * 3})
    assert check.main(["--bar", bar_old, bar_new, "--whole", whole_old, fixed,
                       "--whole", samples_old, samples_new]) == 0  # fmt: skip
    assert capsys.readouterr().out.strip().endswith("replaces the shipped model")


def test_run_writes_only_the_missing_result_files_then_judges(tmp_path, capsys, monkeypatch):
    check = load_benchmark("replacement_check")
    photos = tmp_path / "photos"
    photos.mkdir()
    results = tmp_path / "checks"
    results.mkdir()
    # the shipped model's bar is already there: it is not run again
    _results(results / "bar-default.json", {"haze": [(20.0, 15.0)]})
    ran: list[list[str]] = []

    def fake_aioir(args: list[str]) -> int:
        ran.append(args)
        out = Path(args[args.index("--json") + 1])
        better = "v9" in args[args.index("--model") + 1]
        _results(out, {"haze": [(21.0 if better else 20.0, 15.0)]})
        return 0

    monkeypatch.setattr(check, "_run_aioir", fake_aioir)
    code = check.main(["--run", "runs/v9", "--results", str(results), "--photos", str(photos)])
    assert code == 0
    assert [(a[2], a[a.index("--json") + 1].rsplit("/", 1)[1]) for a in ran] == [
        ("runs/v9", "bar-v9.json"), ("default", "whole-default.json"), ("runs/v9", "whole-v9.json"),
        ("default", "samples-default.json"), ("runs/v9", "samples-v9.json"),
    ]  # fmt: skip
    whole = ran[2]
    assert whole[whole.index("--whole-side") + 1] == "384" and "--limit" not in whole
    assert ran[0][ran[0].index("--limit") + 1] == "12"
    samples = ran[4]
    assert [samples[i + 1] for i, a in enumerate(samples) if a == "--benchmark"] == [
        f"synthetic:{check.SAMPLES}",
        f"synthetic:{check.SAMPLES}:clean",
    ]
    assert capsys.readouterr().out.strip().endswith("replaces the shipped model")

    # a second call finds all six files and runs nothing
    ran.clear()
    assert check.main(["--run", "runs/v9", "--results", str(results), "--photos", str(photos)]) == 0
    assert ran == []


def test_run_stops_in_one_line_when_an_evaluation_fails(tmp_path, monkeypatch):
    check = load_benchmark("replacement_check")
    monkeypatch.setattr(check, "_run_aioir", lambda args: 2)
    with pytest.raises(SystemExit, match=r"bar-default\.json: aioir evaluate --model default"):
        check.main(["--run", "runs/v9", "--results", str(tmp_path), "--photos", str(tmp_path)])
    with pytest.raises(SystemExit, match="would be named"):
        check.run_checks("runs/x", "other/x", tmp_path, tmp_path)


def test_a_photo_returned_exactly_is_no_wreck(tmp_path):
    """``aioir evaluate`` writes an infinite PSNR (a clean photo returned as it came, e.g. told
    that it is clean) as null: never a wreck, while a clean photo under 30 dB still is."""
    check = load_benchmark("replacement_check")
    images = [{"dataset": "clean", "name": f"p{i}.png", "psnr": p, "input_psnr": None}
              for i, p in enumerate((None, 28.0, 45.0))]  # fmt: skip
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"results": [{"columns": [], "images": images}]}))
    assert check.wrecked(check.read_results(path)) == ["clean/p1.png (28.00 ← clean)"]
