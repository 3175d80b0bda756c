"""Restoration quality on clean photos degraded on the fly: models vs classical methods.

Usage::

    python benchmarks/quality.py --photos data/photos                            # classical only
    python benchmarks/quality.py --photos data/photos --models runs/udair.safetensors \\
        --crop 256 --tasks noise,haze --out benchmarks/quality.md
    python benchmarks/quality.py --photos data/photos --classical dcp,identity --limit 2

Runs the ``synthetic:PHOTOS[:TASKS]`` benchmark of :mod:`aioir.evaluate` (a photo corpus folder
uses its ``test`` split; seeded per-image degradations, severity uniform inside the ``moderate``
tier; ``--crop`` takes a seeded crop per image) for every model and classical method, and writes
one paper-style markdown table (PSNR/SSIM per task, mean over tasks and over images) under the
protocol header, followed by the command line, the machine and the wall time of each method.

``--photo-tasks`` runs the per-task bar instead, ``photo-tasks:PHOTOS[:COLUMNS]`` (two seeded
256² crops per test photo; Gaussian σ 15/25/50 with σ known, camera noise, haze, low light,
rain, underwater, motion blur, clean): ``classical:auto`` and ``identity`` on every column, any
other classical method only on the columns of its task (``adaptive-gamma``, ``lime`` → low
light), and after the usual tables one PSNR table with a row per column, a column per method,
the best classical method and the goal of the default model (:data:`GOALS`)::

    OMP_NUM_THREADS=1 python benchmarks/quality.py --photos data/photos1024-v4 --photo-tasks \
        --classical auto,adaptive-gamma --models default --threads 1 --json runs/bar.json

``--baseline FILE.json`` (repeatable) adds results saved by an earlier ``--json`` (or by
``aioir evaluate --json``) to the tables instead of recomputing them — CBM3D takes ≈ 20 s per
256² crop on one CPU thread, and its inputs never change. With ``--limit N`` the saved results
are cut to their first N cases per column too, so every row is scored on the same cases
(``photo-tasks`` orders cases crop-major: N = the number of photos is crop 0 of every photo).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from aioir.evaluate.benchmarks import Benchmark
    from aioir.evaluate.report import BenchmarkResult

CLASSICAL_DEFAULT = "identity,auto"

#: The default model's goal per ``photo-tasks`` column: ``(rule, reference)``. ``classical``:
#: above the best classical method (``within``: at most 0.5 dB under it); ``input+1``: 1 dB
#: over the degraded input; ``40``: at least 40 dB (leave clean photos alone).
GOALS: dict[str, tuple[str, str]] = {
    "s15": ("≥ best classical − 0.5 dB", "within"),
    "s25": ("≥ best classical − 0.5 dB", "within"),
    "s50": ("≥ best classical − 0.5 dB", "within"),
    "camera-noise": ("> best classical", "classical"),
    "haze": ("> best classical", "classical"),
    "lowlight": ("> best classical", "classical"),
    "rain": ("> best classical", "classical"),
    "underwater": ("> best classical", "classical"),
    "motion-blur": ("≥ input + 1 dB", "input+1"),
    "clean": ("≥ 40 dB", "40"),
}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print (or write) the markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, required=True, help="clean photos or corpus")
    parser.add_argument("--tasks", default="", help="comma-separated tasks (default: all six)")
    parser.add_argument("--models", nargs="*", default=[], help="model names or saved paths")
    parser.add_argument(
        "--classical",
        default=CLASSICAL_DEFAULT,
        help=f"comma-separated classical methods, '' for none (default {CLASSICAL_DEFAULT})",
    )
    parser.add_argument("--crop", type=int, default=None, help="seeded N×N crop per image")
    parser.add_argument("--limit", type=int, default=None, help="first N images per task")
    parser.add_argument("--protocol", default="clean")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--tile", type=int, default=None)
    parser.add_argument("--allow-untrained", action="store_true", help="smoke runs only")
    parser.add_argument(
        "--photo-tasks",
        action="store_true",
        help="the per-task bar photo-tasks:PHOTOS (--tasks then selects its columns)",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        action="append",
        default=[],
        help="results JSON of an earlier run to include (repeatable)",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--json", type=Path, default=None, help="also write all results")
    parser.add_argument("--out", type=Path, default=None, help="markdown file (default stdout)")
    args = parser.parse_args(argv)

    import json

    from aioir.evaluate.benchmarks import get_benchmark
    from aioir.evaluate.methods import load_method
    from aioir.evaluate.report import BenchmarkResult, comparison_markdown, write_json
    from aioir.evaluate.runner import evaluate

    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    kind = "photo-tasks" if args.photo_tasks else "synthetic"
    spec = f"{kind}:{args.photos}" + (f":{args.tasks}" if args.tasks else "")
    bench = get_benchmark(spec, crop=args.crop)
    baseline = [
        _first_cases(BenchmarkResult.from_dict(r), args.limit)
        for path in args.baseline
        for r in json.loads(path.read_text(encoding="utf-8"))["results"]
    ]
    methods = [f"classical:{m.strip()}" for m in args.classical.split(",") if m.strip()]
    methods += list(args.models)
    results, timings = [], []
    for name in methods:
        method = load_method(
            name, device=args.device, tile=args.tile, allow_untrained=args.allow_untrained
        )
        target = _columns_for(bench, name) if args.photo_tasks else bench
        if target is None:
            print(f"{name}: no column of its task in {bench.name}; skipped", file=sys.stderr)
            continue
        start = time.perf_counter()
        results.append(
            evaluate(method, target, protocol=args.protocol, limit=args.limit, progress=True)
        )
        timings.append((name, time.perf_counter() - start))

    shown = baseline + results
    lines = [comparison_markdown(shown)]
    if args.photo_tasks:
        lines.append(bar_markdown(shown))
    if results and results[0].warnings:
        lines += [f"WARNING: {w}" for w in results[0].warnings]
    lines.append("")
    lines.append(
        "Command: `python benchmarks/quality.py "
        + " ".join(sys.argv[1:] if argv is None else argv)
        + "`"
    )
    lines.append(
        f"Machine: {platform.machine()}, {platform.processor() or 'unknown CPU'}, "
        f"Python {platform.python_version()}; device {args.device}"
    )
    lines.append("Wall time: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in timings))
    text = "\n".join(lines) + "\n"
    if args.out is not None:
        args.out.write_text(text, encoding="utf-8")
    else:
        print(text)
    if args.json is not None:
        write_json(args.json, shown)
    return 0


def _first_cases(result: BenchmarkResult, limit: int | None) -> BenchmarkResult:
    """``result`` with every column cut to its first ``limit`` cases (summaries recomputed)."""
    import dataclasses

    from aioir.evaluate.report import ColumnSummary

    if limit is None:
        return result
    images, columns = [], []
    for c in result.columns:
        rows = [r for r in result.images if r.dataset == c.key][:limit]
        images += rows
        columns.append(ColumnSummary.from_images(c.key, c.title, c.task, rows, c.expected))
        columns[-1].notes = c.notes
    return dataclasses.replace(result, columns=columns, images=images)


def _columns_for(bench: Benchmark, method: str) -> Benchmark | None:
    """``bench`` restricted to the columns of a classical method's task (None: no such column);
    ``classical:auto``, ``classical:identity`` and networks get every column."""
    import dataclasses

    from aioir.evaluate.benchmarks import PhotoTasksBenchmark
    from aioir.evaluate.classical import CLASSICAL_METHODS

    name = method.removeprefix("classical:")
    task = (
        CLASSICAL_METHODS[name].task if method.startswith("classical:") and name != "auto" else None
    )
    if task is None or not isinstance(bench, PhotoTasksBenchmark):
        return bench
    keys = tuple(c.key for c in bench.specs() if c.task == task)
    return dataclasses.replace(bench, keys=keys) if keys else None


def bar_markdown(results: Sequence[BenchmarkResult]) -> str:
    """One PSNR table over every ``photo-tasks`` result: a row per column (task), the degraded
    input, each method, the best classical method and the goal (:data:`GOALS`) with each
    network's distance to it (positive: met)."""
    import math

    psnr: dict[str, dict[str, float]] = {}
    inputs: dict[str, float] = {}
    titles: dict[str, str] = {}
    methods: list[str] = []
    for r in results:
        if not r.benchmark.startswith("photo-tasks:"):
            continue
        if r.method not in methods:
            methods.append(r.method)
        for c in r.columns:
            titles[c.key] = c.title
            if c.psnr is not None:
                psnr.setdefault(c.key, {})[r.method] = c.psnr
            if c.input_psnr is not None:
                inputs[c.key] = c.input_psnr
    networks = [m for m in methods if not m.startswith("classical:")]
    classical = [m for m in methods if m.startswith("classical:") and m != "classical:identity"]

    def fmt(v: float | None) -> str:
        if v is None:
            return "–"
        return "∞" if math.isinf(v) else f"{v:.2f}"

    head = ["task", "input", *classical, "best classical", *networks, "goal"]
    head += [f"{n} − goal" for n in networks]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for key, title in titles.items():
        row = psnr.get(key, {})
        scores = [row[m] for m in classical if m in row and key != "clean"]
        best = max(scores) if scores else None
        rule, ref = GOALS.get(key, ("–", ""))
        goal = {
            "within": None if best is None else best - 0.5,
            "classical": best,
            "input+1": None if key not in inputs else inputs[key] + 1.0,
            "40": 40.0,
        }.get(ref)
        cells = [title, fmt(inputs.get(key)), *(fmt(row.get(m)) for m in classical), fmt(best)]
        cells += [fmt(row.get(n)) for n in networks]
        cells.append(f"{fmt(goal)} ({rule})" if goal is not None else rule)
        for n in networks:
            gap = None if goal is None or n not in row else row[n] - goal
            cells.append("–" if gap is None else ("∞" if math.isinf(gap) else f"{gap:+.2f}"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
