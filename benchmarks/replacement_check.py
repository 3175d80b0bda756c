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
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aioir.engine.validation import PSNR_CAP, floored_gain

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bar", nargs=2, required=True, metavar=("SHIPPED", "CANDIDATE"))
    parser.add_argument(
        "--whole", nargs=2, action="append", required=True, metavar=("SHIPPED", "CANDIDATE"),
        help="a whole-photo set's results (repeat: test photos whole, sample photos)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    for path in [*args.bar, *(p for pair in args.whole for p in pair)]:
        if not Path(path).is_file():
            parser.error(f"{path}: no such file")
    verdict, lines = check(tuple(args.bar), [tuple(p) for p in args.whole])
    print("\n".join(lines))
    return 0 if verdict else 1


if __name__ == "__main__":
    raise SystemExit(main())
