"""How much of a filter-bank gate's shortfall is its degradation classifier's?

A gate that reads a classifier (``filter_bank.classifier``) can only choose as well as the
classifier names the degradation. This script fits the gate of a fitted model on every other
one of its stored gate examples, exactly as the fit would (its options, its initial gate), and
scores the choice on the examples it did not see, twice: with the classifier's verdict as
stored, and with the **true task** in its place (its
:func:`~aioir.nn.filter_bank.told_routes`: log-probability 0 for the task the crop was
degraded with, ``GIVEN_CLASS_LOG_FLOOR`` for the others — a classifier that is always right
and sure, and what a head's told gate, ``filter_bank.told_gate``, is fitted with, so the
second column is what that gate gives on the held-out examples). The difference, per kind of example (the main crops, then each ``extra_gate_data``
entry's) and task, is what a better classifier could give that gate; a small one says the
misses lie elsewhere (the candidates, the descriptor's network terms).

    python benchmarks/gate_oracle.py --model runs/v14a \\
        --examples runs/v14-gate-examples.safetensors \\
        --examples runs/v14-pale-examples.safetensors \\
        --examples runs/v14-dark-examples.safetensors --json oracle.json

Scores are the PSNR of the mix the gate returns: exact where the examples files hold the Gram
matrices of the candidates' errors (:func:`aioir.engine.filter_bank.mixture_psnr`, floored at
the fit's ``score_cap``), else its bound (:func:`aioir.engine.filter_bank.mixture_bound`: the
PSNR of the weighted mean squared error, never above the mix's own), candidates capped at the
fit's ``score_cap``. Examples, not photos:
use it to decide where to work, and judge a changed model on photos (``gate_sweep.py``, the
replacement check).
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from aioir.engine.filter_bank import (
    FilterBankOptions,
    mixture_bound,
    mixture_psnr,
    saved_gate_examples,
    train_gate,
    unfitted_head,
)
from aioir.io import write_bytes_atomically
from aioir.models import load_model
from aioir.nn.filter_bank import told_routes


def true_task_terms(tasks: list[str], classes: list[str]) -> Tensor:
    """The classifier terms (N×C log-probabilities) of a classifier that names every example's
    task and is sure of it: each example's :func:`~aioir.nn.filter_bank.told_routes`."""
    return torch.stack([told_routes(len(classes), [classes.index(t)]) for t in tasks])


def held_out_scores(
    head: torch.nn.Module,
    descriptors: Tensor,
    scores: Tensor,
    options: FilterBankOptions,
    tasks: list[str],
    extra: int,
    rng_state: Tensor,
    gram: Tensor | None = None,
) -> Tensor:
    """Fit a copy of ``head``'s gate (a head as the fit builds it, before its gate is fitted)
    on the even-numbered examples (``descriptors`` N×D,
    uncapped ``scores`` N×C, each example's task, the last ``extra`` from extra data) as the
    fit would, and return every example's score (N, dB: the PSNR of the mix, exact with the
    examples' Gram matrices ``gram``, else its bound; capped); the odd-numbered ones are the
    held-out ones. The gate's reset draws from torch's
    generator, set to ``rng_state`` first (the stored examples' state: as the fit draws)."""
    trial = copy.deepcopy(head)
    train = torch.arange(len(scores)) % 2 == 0
    first_extra = len(scores) - extra
    torch.set_rng_state(rng_state)
    train_gate(
        trial, descriptors[train], scores[train].clone(), options,
        extra_examples=int(train[first_extra:].sum()),
        example_tasks=[t for t, keep in zip(tasks, train.tolist(), strict=True) if keep],
        gram=None if gram is None else gram[train],
    )  # fmt: skip
    with torch.no_grad():
        logits = trial.gate(trial.normalize(descriptors))
        log_weights = trial.log_mix(logits, descriptors)
    if gram is not None:
        return mixture_psnr(log_weights.exp(), gram, options.score_cap)
    return mixture_bound(log_weights, scores.clamp(max=options.score_cap))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the comparison; returns what ``--json`` writes."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a fitted filter-bank model (folder)")
    parser.add_argument(
        "--examples", required=True, action="append",
        help="its gate_examples_file (repeat for its extra_gate_data files, in the fit's order)",
    )  # fmt: skip
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", default=None, help="write the table here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    model = load_model(args.model).eval()
    record = model.aioir_metadata.get("filter_bank")
    head = getattr(model, "filter_bank", None)
    classifier = getattr(head, "classifier", None)
    if record is None or classifier is None:
        parser.error(f"--model {args.model}: not a filter-bank model whose gate reads a classifier")
    options = FilterBankOptions(**record["filter_bank"])
    try:
        saved = saved_gate_examples(model, args.examples)
    except ValueError as exc:
        parser.error(f"--examples: {exc}")
    if options.needs_gram and saved.gram is None:
        parser.error("--examples: no Gram matrices of these candidates (gate_mixture_score: exact)")
    terms = saved.examples.terms_for(head)
    if terms is None:
        parser.error(
            "--examples: not this model's classifier terms (a fit of this model adds them)"
        )
    classes = list(classifier.classes)
    # the head as the fit builds it (its gate's first layer as initialised, not as fitted on
    # every example, the held-out ones included)
    initial = unfitted_head(model, options, int(record["seed"]))
    verdicts = {"classifier": terms, "true task": true_task_terms(saved.tasks, classes)}
    per_verdict = {
        name: held_out_scores(
            initial,
            initial.assemble(saved.examples.descriptors, given),
            saved.scores,
            options,
            saved.tasks,
            saved.extra,
            saved.examples.rng_state,
            saved.gram,
        )
        for name, given in verdicts.items()
    }
    kinds = ["main"] + [
        "+".join(f"{k} {v}" for k, v in (entry.get("data") or {}).items()) or f"extra {i}"
        for i, entry in enumerate(options.extra_gate_data[: len(args.examples) - 1])
    ]
    kind_of = [kind for kind, n in zip(kinds, saved.per_file, strict=True) for _ in range(n)]
    held_out = torch.arange(len(saved.tasks)) % 2 == 1
    rows = []
    for kind in kinds:
        for task in classes:
            rows_of = (
                torch.tensor(
                    [k == kind and t == task for k, t in zip(kind_of, saved.tasks, strict=True)]
                )
                & held_out
            )
            if not rows_of.any():
                continue
            row = {"kind": kind, "task": task, "n": int(rows_of.sum())}
            for name, scores in per_verdict.items():
                row[name] = round(float(scores[rows_of].mean()), 2)
            row["gap"] = round(row["true task"] - row["classifier"], 2)
            rows.append(row)
    print(f"{'kind':12s} {'task':12s} {'n':>4s} {'classifier':>11s} {'true task':>10s} {'gap':>6s}")
    for r in rows:
        print(f"{r['kind']:12s} {r['task']:12s} {r['n']:4d} {r['classifier']:11.2f} "
              f"{r['true task']:10.2f} {r['gap']:+6.2f}")  # fmt: skip
    out = {"model": args.model, "examples": args.examples, "rows": rows}
    if args.json:
        write_bytes_atomically(Path(args.json), json.dumps(out, indent=1).encode(), overwrite=True)
    return out


if __name__ == "__main__":
    main()
