"""Would a longer-trained degradation classifier let the blind head restore more? The classifier's
learning curve read where the head needs it: on held-out photos, one class against the rest.

A blind filter-bank head restores a degradation only as far as its classifier names it: where
the classifier is unsure, the gate keeps the input (a pale clean scene looks hazy, and dehazing it
wrecks it). So what limits blind haze is how well the classifier tells hazy crops from every
other crop, pale and near-white clean ones included — not its accuracy over all classes. For
each classifier given (the head's of a saved model, or one a fit stored in its
``filter_bank.parts_file``: one per point of the curve, e.g. the same recipe at 15,000 and
30,000 steps) and each set of crops, this prints:

- ``accuracy``: the fraction of crops whose most likely class is their column's task;
- for ``--target`` (default ``haze``): ``auc``, how often a crop of that column reads the class
  more likely than a crop of any other column (1 = always); ``sure``, the fraction of its crops
  read at least ``--sure`` (default 0.9: what ``--follow-hint`` follows); ``false_sure``, how
  many other crops read so (each one a photo the hint would wreck), and which columns they are;
  each of the target column's crops' readings (``readings``).

The sets are the bar's crops (``--bar``: crop 0 of each of its first ``--limit-bar`` test
photos, as ``aioir evaluate --benchmark photo-tasks:PHOTOS --limit 12``) and the val photos
(``--photos``) as crops, whole at 384 px, and whole rendered pale, dark and high-key, as
``benchmarks/RESULTS.md`` §5 builds them; each input is padded as the model pads
(``--pad-multiple``) before the classifier reads it, as the head does.

    python benchmarks/classifier_curve.py --classifier 15k=default \\
        --classifier 30k=runs/curve/c30k-parts.safetensors \\
        --bar data/photos1024-v4 --photos runs/val-photos --json curve.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from aioir.engine.filter_bank import stored_classifier
from aioir.errors import AioirError, ConfigError
from aioir.evaluate.benchmarks import get_benchmark
from aioir.io import write_bytes_atomically
from aioir.models import load_model
from aioir.nn.degradation_classifier import DegradationClassifier
from aioir.nn.padding import pad_to_multiple

#: the val sets: name → (whole side, rendering), as ``benchmarks/RESULTS.md`` §5 builds them
VAL_SETS: dict[str, tuple[int | None, str | None]] = {
    "val crops": (None, None),
    "val whole": (384, None),
    "val pale": (384, "pale"),
    "val dark": (384, "dark"),
    "val high-key": (384, "high-key"),
}


def load_classifier(source: str) -> DegradationClassifier:
    """The classifier of ``source``: a parts file (``.safetensors`` holding a fit's
    ``classifier``) or a saved filter-bank model (``default``, a folder) whose head reads one."""
    if source.endswith(".safetensors"):
        return stored_classifier(source)[0]
    head = getattr(load_model(source), "filter_bank", None)
    classifier = getattr(head, "classifier", None)
    if classifier is None:
        raise ConfigError(f"{source}: not a filter-bank model whose gate reads a classifier")
    return classifier.eval()


def set_inputs(
    photos: str, limit: int, whole_side: int | None, rendering: str | None, pad_multiple: int
) -> tuple[list[Tensor], list[str], list[str]]:
    """Every column's first ``limit`` inputs of ``photo-tasks:photos`` (padded), their columns'
    tasks and the crops' names."""
    bench = get_benchmark(f"photo-tasks:{photos}", whole_side=whole_side, rendering=rendering)
    inputs, tasks, names = [], [], []
    for column in bench.columns(None):
        for i in range(min(limit, column.size)):
            case = column[i]
            padded, _ = pad_to_multiple(case.input[None].float(), pad_multiple)
            inputs.append(padded)
            tasks.append(column.task)
            names.append(f"{column.key}/{case.name}")
    return inputs, tasks, names


def auc(positives: list[float], negatives: list[float]) -> float:
    """How often a positive scores above a negative (ties count half): the ROC curve's area."""
    if not positives or not negatives:
        return float("nan")
    pos, neg = torch.tensor(positives)[:, None], torch.tensor(negatives)[None, :]
    return float(((pos > neg).float() + 0.5 * (pos == neg).float()).mean())


@torch.no_grad()
def read_set(
    classifier: DegradationClassifier,
    inputs: list[Tensor],
    tasks: list[str],
    names: list[str],
    target: str,
    sure: float,
) -> dict[str, Any]:
    """``classifier``'s reading of one set (module docstring)."""
    classes = list(classifier.classes)
    if target not in classes:
        raise ConfigError(f"--target {target}: not a class of the classifier ({classes})")
    k = classes.index(target)
    probabilities = [classifier(x).float().softmax(dim=1)[0] for x in inputs]
    hits = sum(classes[int(p.argmax())] == t for p, t in zip(probabilities, tasks, strict=True))
    mine = [float(p[k]) for p, t in zip(probabilities, tasks, strict=True) if t == target]
    others = [(float(p[k]), n) for p, t, n in zip(probabilities, tasks, names, strict=True)
              if t != target]  # fmt: skip
    false_sure = sorted(n for p, n in others if p >= sure)
    return {
        "crops": len(inputs),
        "accuracy": hits / max(len(inputs), 1),
        "auc": auc(mine, [p for p, _ in others]),
        "sure": sum(p >= sure for p in mine) / max(len(mine), 1),
        "false_sure": len(false_sure),
        "false_sure_crops": false_sure,
        "readings": [round(p, 4) for p in mine],
    }


def _named_source(text: str) -> tuple[str, str]:
    label, sep, source = text.partition("=")
    if not sep or not label or not source:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give LABEL=SOURCE (e.g. 30k=parts.safetensors)"
        )
    return label, source


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Read every set with every classifier; returns what ``--json`` writes."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--classifier", type=_named_source, action="append", required=True,
                        metavar="LABEL=SOURCE", help="a parts file or a filter-bank model")  # fmt: skip
    parser.add_argument("--bar", default=None, help="the corpus whose test photos are the bar's")
    parser.add_argument("--limit-bar", type=int, default=12)
    parser.add_argument("--photos", default=None, help="the val photos (a folder)")
    parser.add_argument("--limit", type=int, default=100, help="val inputs per column")
    parser.add_argument(
        "--sets", default=None, help="of the val sets, only these (comma-separated)"
    )
    parser.add_argument("--target", default="haze")
    parser.add_argument("--sure", type=float, default=0.9)
    parser.add_argument(
        "--pad-multiple", type=int, default=8, help="as the model pads (default's 8)"
    )
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.bar and not args.photos:
        parser.error("give --bar, --photos or both")
    wanted = list(VAL_SETS) if args.sets is None else [s.strip() for s in args.sets.split(",")]
    unknown = [s for s in wanted if s not in VAL_SETS]
    if unknown:
        parser.error(f"--sets: unknown {', '.join(unknown)} (known: {', '.join(VAL_SETS)})")
    try:
        classifiers = {label: load_classifier(source) for label, source in args.classifier}
        sets: dict[str, tuple[list[Tensor], list[str], list[str]]] = {}
        if args.bar:
            sets["bar"] = set_inputs(args.bar, args.limit_bar, None, None, args.pad_multiple)
        for name in wanted if args.photos else ():
            side, rendering = VAL_SETS[name]
            sets[name] = set_inputs(args.photos, args.limit, side, rendering, args.pad_multiple)
        rows = [
            {"classifier": label, "set": name,
             **read_set(classifier, *sets[name], args.target, args.sure)}
            for label, classifier in classifiers.items() for name in sets
        ]  # fmt: skip
    except AioirError as exc:  # a bad source, photo folder or target: one line
        parser.exit(2, f"classifier_curve.py: {exc}\n")
    print(f"{'classifier':12s} {'set':13s} {'accuracy':>8s} {args.target + ' auc':>9s} "
          f"{'sure':>5s} {'false sure':>10s}")  # fmt: skip
    for r in rows:
        print(f"{r['classifier']:12s} {r['set']:13s} {r['accuracy']:8.3f} {r['auc']:9.3f} "
              f"{r['sure']:5.2f} {r['false_sure']:10d}  {', '.join(r['false_sure_crops'][:4])}")  # fmt: skip
    out = {"classifiers": dict(args.classifier), "target": args.target, "sure": args.sure,
           "rows": rows}  # fmt: skip
    if args.json:
        write_bytes_atomically(Path(args.json), json.dumps(out, indent=1).encode(), overwrite=True)
    return out


if __name__ == "__main__":
    main()
