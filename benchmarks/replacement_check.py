"""Does a candidate replace the shipped default model? The replacement rule, from its results.

The rule (``docs/decisions.md``, "The whole-photo check"), fixed before the candidate it first
judged was measured: a candidate replaces the shipped model when all three hold —

1. **bar**: its floored gain on the v4 bar beats the shipped model's;
2. **whole photos**: its floored gain on the held-out whole photos beats the shipped model's —
   the bar's test photos whole and the sample photos, each set's floored gain weighted by its
   number of photos;
3. **no more wrecked photos**: on those whole photos it has no more wrecked cases than the
   shipped model — a degraded photo restored more than :data:`WRECK_DB` dB under its input, or
   a clean photo restored under :data:`CLEAN_WRECK_DB` dB.

Every argument is a pair of ``aioir evaluate --json`` files, the shipped model's first::

    python benchmarks/replacement_check.py \\
        --bar runs/bar-v4.json runs/bar-new.json \\
        --whole runs/whole-v4.json runs/whole-new.json \\
        --whole runs/samples-v4.json runs/samples-new.json

where the bar is ``aioir evaluate --benchmark photo-tasks:data/photos1024-v4 --limit 12``, the
test photos whole the same with ``--whole-side 384`` instead of ``--limit``, and the sample
photos ``--benchmark synthetic:SAMPLES --benchmark synthetic:SAMPLES:clean`` (one file may hold
several results: their columns are pooled). Prints each check and the verdict; exits 0 when the
candidate replaces the shipped model, 1 when it does not.

Or let it run the six evaluations itself (each skipped when its file is already there, so the
shipped model's three are run once per results folder)::

    python benchmarks/replacement_check.py --run runs/v9d --results runs/checks \
        --photos data/photos1024-v4

which writes ``runs/checks/{bar,whole,samples}-{default,v9d}.json`` (a model's tag is its
folder's name) and judges them.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from aioir.engine.validation import PSNR_CAP, floored_gain

#: the shipped sample photos (the second whole-photo set)
SAMPLES = Path(__file__).resolve().parents[1] / "src" / "aioir" / "assets" / "samples"
#: the three result sets the rule reads, in order: bar, test photos whole, sample photos
CHECK_SETS = ("bar", "whole", "samples")

#: a degraded photo restored more than this many dB under its input is wrecked
WRECK_DB = 10.0
#: a clean photo restored under this PSNR (dB) is wrecked
CLEAN_WRECK_DB = 30.0


def read_results(path: str | Path) -> list[dict[str, Any]]:
    """The results of one ``aioir evaluate --json`` file."""
    return list(json.loads(Path(path).read_text(encoding="utf-8"))["results"])


def set_floored_gain(results: Sequence[dict[str, Any]]) -> float:
    """The floored gain over every column of ``results`` (a column without an input PSNR is an
    identity column: judged by its own PSNR)."""
    columns = {c["key"]: c["psnr"] for r in results for c in r["columns"]}
    inputs = {
        c["key"]: PSNR_CAP if c["input_psnr"] is None else c["input_psnr"]
        for r in results
        for c in r["columns"]
    }
    return floored_gain({k: min(v, PSNR_CAP) for k, v in columns.items()}, inputs)


def photo_count(results: Sequence[dict[str, Any]]) -> int:
    """How many photos a set holds (the most images any column has)."""
    counts: dict[str, int] = {}
    for r in results:
        for image in r["images"]:
            counts[image["dataset"]] = counts.get(image["dataset"], 0) + 1
    return max(counts.values(), default=0)


def wrecked(results: Sequence[dict[str, Any]]) -> list[str]:
    """The wrecked cases of ``results``, as ``column/photo (PSNR ← input)``."""
    out = []
    for r in results:
        for image in r["images"]:
            p, p0 = image["psnr"], image["input_psnr"]
            if p is None:  # returned exactly (PSNR ∞): never a wreck
                continue
            bad = p < CLEAN_WRECK_DB if p0 is None else p < p0 - WRECK_DB
            if bad and not math.isnan(p):
                was = "clean" if p0 is None else f"{p0:.2f}"
                out.append(f"{image['dataset']}/{image['name']} ({p:.2f} ← {was})")
    return out


def check(bar: tuple[str, str], whole: Sequence[tuple[str, str]]) -> tuple[bool, list[str]]:
    """The rule on (shipped, candidate) file pairs; returns the verdict and the report lines."""
    lines = []
    bar_gains = [set_floored_gain(read_results(p)) for p in bar]
    ok_bar = bar_gains[1] > bar_gains[0]
    lines.append(f"1. bar floored gain: shipped {bar_gains[0]:+.2f}, candidate {bar_gains[1]:+.2f}"
                 f" — {'beats' if ok_bar else 'does not beat'}")  # fmt: skip
    pooled, wrecks = [0.0, 0.0], [[], []]
    total = 0
    for pair in whole:
        sets = [read_results(p) for p in pair]
        n = photo_count(sets[0])
        if photo_count(sets[1]) != n:
            raise SystemExit(f"{pair[1]}: {photo_count(sets[1])} photos, {pair[0]} has {n}")
        gains = [set_floored_gain(s) for s in sets]
        lines.append(f"   {Path(pair[1]).name} ({n} photos): shipped {gains[0]:+.2f}, "
                     f"candidate {gains[1]:+.2f}")  # fmt: skip
        total += n
        for i in range(2):
            pooled[i] += n * gains[i]
            wrecks[i] += wrecked(sets[i])
    pooled = [g / total for g in pooled]
    ok_whole = pooled[1] > pooled[0]
    lines.append(f"2. whole-photo floored gain ({total} photos): shipped {pooled[0]:+.2f}, "
                 f"candidate {pooled[1]:+.2f} — {'beats' if ok_whole else 'does not beat'}")  # fmt: skip
    ok_wrecks = len(wrecks[1]) <= len(wrecks[0])
    lines.append(f"3. wrecked photos: shipped {len(wrecks[0])}, candidate {len(wrecks[1])} — "
                 f"{'no more' if ok_wrecks else 'more'}")  # fmt: skip
    for name, items in zip(("shipped", "candidate"), wrecks, strict=True):
        lines.extend(f"   {name}: {item}" for item in items)
    verdict = ok_bar and ok_whole and ok_wrecks
    lines.append("replaces the shipped model" if verdict else "does not replace the shipped model")
    return verdict, lines


def model_tag(model: str) -> str:
    """The name a model's result files carry: ``default``, or a saved model's folder name."""
    return Path(model).name or model


def evaluate_args(model: str, check_set: str, photos: Path, samples: Path, out: Path) -> list[str]:
    """The ``aioir evaluate`` arguments that write one check set's results for ``model``."""
    if check_set == "bar":
        bench = ["--benchmark", f"photo-tasks:{photos}", "--limit", "12"]
    elif check_set == "whole":
        bench = ["--benchmark", f"photo-tasks:{photos}", "--whole-side", "384"]
    elif check_set == "samples":
        bench = ["--benchmark", f"synthetic:{samples}", "--benchmark", f"synthetic:{samples}:clean"]
    else:
        raise ValueError(f"unknown check set {check_set!r} (one of {', '.join(CHECK_SETS)})")
    return ["evaluate", "--model", model, *bench, "--no-progress", "--json", str(out)]


def _run_aioir(args: list[str]) -> int:
    return subprocess.run([sys.executable, "-m", "aioir", *args], check=False).returncode


def run_checks(
    shipped: str, candidate: str, results: Path, photos: Path, samples: Path = SAMPLES,
    runner: Callable[[list[str]], int] | None = None,
) -> dict[str, tuple[str, str]]:  # fmt: skip
    """Write whichever of the six result files ``results`` lacks; return ``{set: (shipped,
    candidate)}`` paths. ``runner`` runs ``aioir`` with the given arguments (default: a
    subprocess); a failed evaluation stops with its command in the message."""
    runner = _run_aioir if runner is None else runner
    results.mkdir(parents=True, exist_ok=True)
    if model_tag(shipped) == model_tag(candidate):
        raise SystemExit(f"{candidate}: its result files would be named as {shipped}'s")
    paths: dict[str, tuple[str, str]] = {}
    for check_set in CHECK_SETS:
        pair = []
        for model in (shipped, candidate):
            out = results / f"{check_set}-{model_tag(model)}.json"
            if not out.is_file():
                args = evaluate_args(model, check_set, photos, samples, out)
                print(f"aioir {' '.join(args)}", flush=True)
                if runner(args) != 0:
                    raise SystemExit(f"{out}: aioir {' '.join(args)} failed")
            pair.append(str(out))
        paths[check_set] = (pair[0], pair[1])
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bar", nargs=2, metavar=("SHIPPED", "CANDIDATE"))
    parser.add_argument(
        "--whole", nargs=2, action="append", metavar=("SHIPPED", "CANDIDATE"),
        help="a whole-photo set's results (repeat: test photos whole, sample photos)",
    )  # fmt: skip
    parser.add_argument("--run", metavar="MODEL", help="run the evaluations for this candidate")
    parser.add_argument("--shipped", default="default", help="the model to beat (with --run)")
    parser.add_argument("--results", type=Path, help="folder of result files (with --run)")
    parser.add_argument("--photos", type=Path, help="the photos-v4 corpus folder (with --run)")
    parser.add_argument("--samples", type=Path, default=SAMPLES, help="sample photos (with --run)")
    args = parser.parse_args(argv)
    if args.run is not None:
        if args.bar or args.whole:
            parser.error("--run computes --bar and --whole itself: give one or the other")
        if args.results is None or args.photos is None:
            parser.error("--run needs --results and --photos")
        if not args.photos.is_dir():
            parser.error(f"{args.photos}: no such folder")
        paths = run_checks(args.shipped, args.run, args.results, args.photos, args.samples)
        args.bar, args.whole = paths["bar"], [paths["whole"], paths["samples"]]
    elif not args.bar or not args.whole:
        parser.error("give --bar and --whole, or --run")
    for path in [*args.bar, *(p for pair in args.whole for p in pair)]:
        if not Path(path).is_file():
            parser.error(f"{path}: no such file")
    verdict, lines = check(tuple(args.bar), [tuple(p) for p in args.whole])
    print("\n".join(lines))
    return 0 if verdict else 1


if __name__ == "__main__":
    raise SystemExit(main())
