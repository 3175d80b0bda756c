"""Is a bar column's miss the gate's or the candidates'? Per-crop candidate scores of a
filter-bank model on ``photo-tasks`` columns.

For each crop of each column, every candidate of the head (the network's output, the input, each
filter, each expert) is scored alone, and so are the head's own mixes, blind (the classifier
routes) and told (``--task``: the column's task, through the told gate where the head has one).
The **oracle** is the best single candidate of each crop: what a gate that always chose right
would reach. A goal above the oracle cannot be met by any gate over these candidates — it needs
better candidates; a goal under it is the gate's (or the classifier's) to reach.

    python benchmarks/bar_oracle.py --model default --photos data/photos1024-v4 \\
        --columns motion-blur,haze,camera-noise --limit 12 --json oracle.json

Each column's ``per_crop`` rows (in ``--json``; printed with ``--per-crop``) say where a blind
miss sits: the crop's input, blind, told and oracle scores, the classifier's probabilities and
the score of each class's told choice (the head told that class, right or wrong) — what the
blind head would give if the classifier named that class and were sure.

**Hinted** is what ``aioir restore --follow-hint`` gives: blind, or told the task the head's
hint names (the model's ``suggested_task()``) where it gives one it is sure of (right or
wrong); ``hint`` in a crop's row is that task (sure or not: ``hint_sure``), and ``changes`` how much of the head's
choice telling each class would move (what the hint rule reads), so another hint rule can be
scored from the JSON without restoring again.

The crops are the bar's (``aioir evaluate --benchmark photo-tasks:PHOTOS --limit N``), or with
``--whole-side`` / ``--rendering`` the photos whole, as ``aioir evaluate`` takes them (the val
sets: ``--photos runs/val-photos --whole-side 384 --rendering pale``), scored with protocol
``clean`` (RGB PSNR, per-crop mean), the candidates clipped to [0, 1].
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from aioir.errors import ConfigError
from aioir.evaluate.benchmarks import get_benchmark
from aioir.io import write_bytes_atomically
from aioir.metrics import psnr
from aioir.models import load_model
from aioir.nn.padding import pad_to_multiple, unpad

#: the score of a crop returned exactly (PSNR ∞), so that means and JSON stay finite
EXACT_DB = 100.0


def score(image: Tensor, target: Tensor) -> float:
    """RGB PSNR (dB) of ``image`` clipped to [0, 1] against ``target`` (∞ → ``EXACT_DB``)."""
    return min(float(psnr(image.clamp(0.0, 1.0), target)[0]), EXACT_DB)


def mix_score(
    model: Any, descriptor: Tensor, candidates: list[Tensor], target: Tensor, task: str | None
) -> float:
    """The score of the head's mix for ``descriptor``, told ``task`` (``None``: blind), as
    ``aioir restore --task`` tells it; leaves the head blind."""
    model.set_inference_options(task=task)
    weights = model.filter_bank.choose(descriptor)[0]
    model.set_inference_options(task=None)
    return score(sum(w * c for w, c in zip(weights, candidates, strict=True)), target)


@torch.no_grad()
def column_scores(model: Any, column: Any, limit: int) -> dict[str, Any]:
    """Scores (dB, per-crop mean) of every candidate alone, the oracle, and the head's blind
    and told mixes on the first ``limit`` crops of ``column`` and the blind one with its hint
    followed; ``per_crop``: each crop's scores, hint, the classifier's probabilities and each
    class's told score."""
    head = model.filter_bank
    classes = list(head.classifier.classes)
    candidate_scores, rows = [], []
    for i in range(min(limit, column.size)):
        case = column[i]
        x, target = case.input[None].float(), case.target[None].float()
        padded, size = pad_to_multiple(x, model.size_multiple)  # as the model's forward pads
        y, x_in, features, context = model.head_inputs(padded)
        candidates = [unpad(head.candidate(j, y, x_in), size) for j in range(head.num_candidates)]
        candidate_scores.append([score(c, target) for c in candidates])
        head.weights(y, x_in, features, context)  # (the blind choice: its hint reads it)
        descriptor = head.last_descriptor
        hint = model.suggested_task()

        probabilities = head.log_routes(descriptor)[0].exp()  # blind: the classifier's
        changes = dict(zip(classes, head.told_changes(descriptor)[0].tolist(), strict=True))
        told = {task: mix_score(model, descriptor, candidates, target, task)  # each task once
                for task in dict.fromkeys((None, column.task, *classes))}  # fmt: skip
        rows.append({
            "name": case.name, "input": score(x, target), "blind": told[None],
            "told": told[column.task], "oracle": max(candidate_scores[-1]),
            "hint": hint.task if hint else None, "hint_sure": bool(hint and hint.sure),
            "hinted": told[hint.task] if hint and hint.sure else told[None],
            "probabilities": {c: round(float(p), 3) for c, p in zip(classes, probabilities)},
            "told_as": {c: round(told[c], 2) for c in classes},
            "changes": {c: round(v, 3) for c, v in changes.items()},
        })  # fmt: skip
    scores = torch.tensor(candidate_scores)
    names = model.candidate_names()
    alone = {names[j]: round(float(scores[:, j].mean()), 2) for j in range(len(names))}
    best = scores.argmax(dim=1)

    def mean(key: str) -> float:
        return round(sum(r[key] for r in rows) / len(rows), 2)

    return {
        "column": column.key, "crops": len(rows), "input": mean("input"),
        "oracle": mean("oracle"), "blind": mean("blind"), "told": mean("told"),
        "hinted": mean("hinted"), "hints": sum(r["hint"] is not None for r in rows),
        "followed": sum(r["hint_sure"] for r in rows),
        "told_gate": head.told_gate is not None,
        "alone": dict(sorted(alone.items(), key=lambda kv: -kv[1])),
        "best_on": {names[j]: int((best == j).sum()) for j in best.unique().tolist()},
        "per_crop": [{k: round(v, 2) if isinstance(v, float) else v for k, v in r.items()}
                     for r in rows],
    }  # fmt: skip


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Score the columns; returns what ``--json`` writes."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a filter-bank model (default, a folder)")
    parser.add_argument("--photos", required=True, help="the corpus (its test split) or a folder")
    parser.add_argument("--columns", default="motion-blur,haze,camera-noise")
    parser.add_argument("--limit", type=int, default=12, help="crops per column (the bar's 12)")
    parser.add_argument("--crop", type=int, default=None, help="crop side (default the bar's)")
    parser.add_argument("--whole-side", type=int, default=None, help="whole photos, long side N")
    parser.add_argument("--rendering", default=None, help="the clean photos rendered (pale, …)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--per-crop", action="store_true", help="print every crop's row too")
    parser.add_argument("--json", default=None, help="write the result here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_model(args.model).eval()
    if getattr(getattr(model, "filter_bank", None), "classifier", None) is None:
        parser.error(f"--model {args.model}: not a filter-bank model whose gate reads a classifier")
    try:
        model.set_inference_options(task=None)
    except ConfigError as exc:
        parser.error(f"--model {args.model}: {exc}")
    try:
        bench = get_benchmark(
            f"photo-tasks:{args.photos}",
            crop=args.crop,
            whole_side=args.whole_side,
            rendering=args.rendering,
        )
    except ConfigError as exc:
        parser.error(str(exc))
    columns = {c.key: c for c in bench.columns(None)}
    wanted = [k.strip() for k in args.columns.split(",") if k.strip()]
    unknown = [k for k in wanted if k not in columns]
    if unknown:
        parser.error(f"--columns: unknown {', '.join(unknown)} (known: {', '.join(columns)})")
    rows = [column_scores(model, columns[k], args.limit) for k in wanted]
    for r in rows:
        top = ", ".join(f"{n} {s:.2f}" for n, s in list(r["alone"].items())[:4])
        print(f"{r['column']:14s} input {r['input']:.2f}  blind {r['blind']:.2f}  hinted "
              f"{r['hinted']:.2f} ({r['hints']} hints, {r['followed']} followed)  told "
              f"{r['told']:.2f}  oracle "
              f"{r['oracle']:.2f}  | alone: {top}")  # fmt: skip
        for c in r["per_crop"] if args.per_crop else ():
            likely = ", ".join(f"{k} {p:.2f}" for k, p in sorted(
                c["probabilities"].items(), key=lambda kv: -kv[1])[:3])  # fmt: skip
            hint = f"  hint {c['hint']}" if c["hint"] else ""
            print(f"  {c['name']:40s} input {c['input']:6.2f}  blind {c['blind']:6.2f}  told "
                  f"{c['told']:6.2f}  oracle {c['oracle']:6.2f}  | {likely}{hint}")  # fmt: skip
    out = {"model": args.model, "photos": args.photos, "limit": args.limit,
           "whole_side": args.whole_side, "rendering": args.rendering, "rows": rows}  # fmt: skip
    if args.json:
        write_bytes_atomically(Path(args.json), json.dumps(out, indent=1).encode(), overwrite=True)
    return out


if __name__ == "__main__":
    main()
