"""Score hint rules from ``bar_oracle.py --json`` files, without restoring again.

The default model's hint (``FilterBankRestorer.suggested_task``) names, of the classes outside
a set it never names, those the classifier gives at least a least probability, the likeliest
whose told choice moves at least a least share of the head's choice. A user who follows it
(``aioir restore --follow-hint``) gets the image told that class. ``bar_oracle.py`` stores, per
image, the blind score, each class's told score (``told_as``), the classifier's probabilities
and each class's ``changes``: all a rule needs. This script scores a grid of rules on each
file — the floored gain of its columns with every hint followed, as ``aioir evaluate
--follow-hint`` would give it — and their mean over the files::

    python benchmarks/bar_oracle.py --model default --photos runs/val-photos \\
        --columns s15,s25,s50,camera-noise,haze,lowlight,rain,underwater,motion-blur,clean \\
        --limit 100 --json runs/checks/oracle-crops.json        # and --whole-side 384 [--rendering …]
    python benchmarks/hint_sweep.py runs/checks/oracle-*.json \\
        --probabilities 0.5,0.6,0.7 --changes 0.5,0.7,0.9 --never clean,rain --never clean,rain,lowlight

Each printed line is one rule: the floored gain of every file and their mean; ``blind`` (no
hint followed) comes first. Choose on val photos; the bar only reports.
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aioir.engine.validation import PSNR_CAP, floored_gain
from aioir.io import write_bytes_atomically
from aioir.models.filter_bank import (
    NEVER_SUGGESTED,
    SUGGEST_MIN_CHANGE,
    SUGGEST_MIN_PROBABILITY,
    hint_for,
)


@dataclass(frozen=True)
class HintRule:
    """A hint rule: the least probability, the least change, the classes never named."""

    min_probability: float
    min_change: float
    never: frozenset[str]

    def hint(self, crop: dict[str, Any]) -> str | None:
        """The class this rule names for one ``bar_oracle`` crop row, or ``None``."""
        return hint_for(
            crop["probabilities"], crop["changes"], min_probability=self.min_probability,
            min_change=self.min_change, never=self.never,
        )  # fmt: skip

    def label(self) -> str:
        never = ",".join(sorted(self.never))
        return f"p ≥ {self.min_probability:g}, change ≥ {self.min_change:g}, never {never}"


def followed_gain(rows: Sequence[dict[str, Any]], rule: HintRule | None) -> tuple[float, int]:
    """The floored gain of ``bar_oracle`` column ``rows`` with ``rule``'s hints followed
    (``None``: blind), and how many hints it gave."""
    psnrs, inputs, hints = {}, {}, 0
    for row in rows:
        crops = row["per_crop"]
        scores = []
        for crop in crops:
            task = None if rule is None else rule.hint(crop)
            hints += task is not None
            scores.append(crop["blind"] if task is None else crop["told_as"][task])
        psnrs[row["column"]] = min(sum(scores) / len(scores), PSNR_CAP)
        inputs[row["column"]] = min(sum(c["input"] for c in crops) / len(crops), PSNR_CAP)
    return floored_gain(psnrs, inputs), hints


def sweep(files: dict[str, list[dict[str, Any]]], rules: Sequence[HintRule | None]) -> list[dict]:
    """Per rule: its gain and hints on each file and the mean gain."""
    out = []
    for rule in rules:
        per_file = {name: followed_gain(rows, rule) for name, rows in files.items()}
        gains = [g for g, _ in per_file.values()]
        out.append({
            "rule": "blind" if rule is None else rule.label(),
            "gains": {n: round(g, 3) for n, (g, _) in per_file.items()},
            "hints": {n: h for n, (_, h) in per_file.items()},
            "mean": round(sum(gains) / len(gains), 3),
        })  # fmt: skip
    return out


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def main(argv: list[str] | None = None) -> list[dict]:
    """Print (and return) the sweep."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("oracle", nargs="+", type=Path, help="bar_oracle.py --json files")
    parser.add_argument("--probabilities", type=_floats, default=[SUGGEST_MIN_PROBABILITY])
    parser.add_argument("--changes", type=_floats, default=[SUGGEST_MIN_CHANGE])
    parser.add_argument(
        "--never", action="append", default=None, help="classes never named, comma-separated "
        "(repeat for several sets; default the model's: " + ",".join(sorted(NEVER_SUGGESTED)) + ")",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, default=None, help="write the sweep here")
    args = parser.parse_args(argv)
    files = {}
    for path in args.oracle:
        try:
            files[path.stem] = json.loads(path.read_text(encoding="utf-8"))["rows"]
        except (OSError, ValueError, KeyError) as exc:
            parser.error(f"{path}: not a bar_oracle.py --json file ({exc})")
    nevers = [frozenset(n.strip() for n in s.split(",") if n.strip())
              for s in (args.never or [",".join(NEVER_SUGGESTED)])]  # fmt: skip
    rules: list[HintRule | None] = [None]
    rules += [HintRule(p, c, n) for n, p, c in
              itertools.product(nevers, args.probabilities, args.changes)]  # fmt: skip
    result = sweep(files, rules)
    for r in result:
        per = "  ".join(f"{n} {g:+.2f} ({r['hints'][n]})" for n, g in r["gains"].items())
        print(f"{r['mean']:+.3f}  {per}  | {r['rule']}")
    if args.json:
        write_bytes_atomically(args.json, json.dumps(result, indent=1).encode(), overwrite=True)
    return result


if __name__ == "__main__":
    main()
