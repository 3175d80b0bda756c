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
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

CLASSICAL_DEFAULT = "identity,auto"


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
    parser.add_argument("--json", type=Path, default=None, help="also write all results")
    parser.add_argument("--out", type=Path, default=None, help="markdown file (default stdout)")
    args = parser.parse_args(argv)

    from aioir.evaluate.benchmarks import get_benchmark
    from aioir.evaluate.methods import load_method
    from aioir.evaluate.report import comparison_markdown, write_json
    from aioir.evaluate.runner import evaluate

    spec = f"synthetic:{args.photos}" + (f":{args.tasks}" if args.tasks else "")
    bench = get_benchmark(spec, crop=args.crop)
    methods = [f"classical:{m.strip()}" for m in args.classical.split(",") if m.strip()]
    methods += list(args.models)
    results, timings = [], []
    for name in methods:
        method = load_method(
            name, device=args.device, tile=args.tile, allow_untrained=args.allow_untrained
        )
        start = time.perf_counter()
        results.append(
            evaluate(method, bench, protocol=args.protocol, limit=args.limit, progress=True)
        )
        timings.append((name, time.perf_counter() - start))

    lines = [comparison_markdown(results)]
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
        write_json(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
