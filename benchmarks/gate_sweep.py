"""Score filter-bank gate settings on a photo-tasks benchmark, without running the network again.

A filter-bank fit (``aioir fit-filter-bank``) spends most of its time restoring its training
crops; its ``filter_bank.gate_examples_file`` keeps what the gate is trained on. This script
takes a fitted model and that file, restores every case of ``photo-tasks:PHOTOS`` once (keeping
each case's descriptor and every candidate: network output, input, filters, experts), then for
each gate setting trains the gate exactly as the fit would (same initial gate, same random
state, same examples) and scores the blended output of every case. A setting is chosen by the
bar's selection measure, the **floored gain**: the mean gain over the input of the degraded
columns, less every dB a column falls under its input (the clean column: under 40 dB).

Use it on photos that the bar does not use: a folder of the corpus's ``val`` photos (repeat
``--photos``, and the cache options with it, to score several folders as one set: the v4
corpus's val photos and ``photos-v4-val2``'s).

    python benchmarks/gate_sweep.py --model runs/v4b-base \
        --examples runs/v4b-gate-examples.safetensors --photos runs/val-photos \
        --grid gate_weight_decay=1.0,0.1,0.01 --grid gate_epochs=3000,6000 --json sweep.json

Each line printed is one setting: its per-column PSNR (dB) and floored gain. The fit options
not in a ``--grid`` are the model's own (its saved ``filter_bank`` record).

Crops are not whole photos: a gate that wins on crops can still misjudge a whole photo (run
30's did, on ``make demo``'s blurred clock). ``--whole-photos 384`` also restores every photo
whole, its long side 384 px as the demo has it, scores every setting on those too, and
chooses by the mean of the two floored gains. ``--pale`` adds the whole photos rendered pale
and flat (``PhotoTasksBenchmark(rendering="pale")``: a photo kind the val split lacks, which
the network darkens as haze); the choice is then the mean of three. ``--defocus`` adds them
rendered out of focus (bokeh, which a deblurring expert "sharpens" into invented texture: run
37), and ``--dark`` rendered dim (a night scene, which a low-light enhancer brightens: run 38),
each one more gain in the mean.

A fit with ``filter_bank.extra_gate_data`` keeps those examples in their own files: give every
file, main first, as the fit lists them (``--examples MAIN --examples EXTRA``).

``--keep-gains 0.5`` chooses only among settings that keep, in every degraded column, at least
half of the model's own gate's gain over the input: the floored gain charges a task given up
(its input returned) only as a lost gain, so without it a sweep may choose a gate that never
dehazes (run 35).

``--save DIR`` writes the chosen setting's model there (the model with that gate, its record's
``filter_bank`` options updated and the sweep's scores under ``gate_sweep``; its fit-time
``val`` scores dropped, as they were another gate's): the model a fit with those options would
give, without fitting again, ready for the held-out checks.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import itertools
import json
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from tqdm import tqdm

from aioir.engine import validation
from aioir.engine.filter_bank import (
    GATE_ONLY_OPTIONS,
    FilterBankOptions,
    saved_gate_examples,
    train_gate,
    unfitted_head,
)
from aioir.engine.validation import PSNR_CAP
from aioir.evaluate.benchmarks import PhotoTasksBenchmark
from aioir.io import write_bytes_atomically
from aioir.metrics import psnr
from aioir.models import load_model
from aioir.nn.padding import pad_to_multiple

#: the gate settings a sweep may vary (``hidden`` too: the gate's shape, not its examples)
SWEEPABLE = (
    *(k for k in GATE_ONLY_OPTIONS if k not in ("gate_examples_file", "extra_gate_data")),
    "hidden",
    "input_statistics",
    "gate_descriptor",
    "routed_gate",
    "gate_statistics",
)

#: photo renderings a sweep can also score, whole (``--pale``, ``--dark``, ``--defocus``), each
#: with its ``--NAME-cache``: photo kinds the val split lacks
#: (:data:`aioir.evaluate.benchmarks.PHOTO_RENDERINGS`), and what each looks like
RENDERED_KINDS = {
    "pale": "pale and flat (a photo kind a haze detector mistakes for haze)",
    "dark": "dim and low-key (a night scene a low-light enhancer mistakes for under-exposure)",
    "defocus": "out of focus (bokeh, which a deblurring candidate mistakes for blur)",
}


@dataclasses.dataclass
class CaseCache:
    """One column's cases: the descriptors' network terms (N×D), each case's candidates
    (J×3×H×W; 1 is the input) and target (3×H×W) — sizes may differ between cases (whole
    photos) — and the input PSNRs (N)."""

    key: str
    descriptors: Tensor
    candidates: list[Tensor]
    targets: list[Tensor]
    input_psnr: Tensor
    input_terms: Tensor | None = None  # a head's input terms (N×S), once one needed them
    input_terms_id: str = ""  # whose (FilterBankHead.input_terms_id)


@torch.no_grad()
def restore_cases(
    model: torch.nn.Module,
    photos: str,
    limit: int | None,
    crops_per_photo: int = 2,
    whole_side: int | None = None,
    rendering: str | None = None,
) -> list[CaseCache]:
    """Every column of ``photo-tasks:photos`` (``crops_per_photo`` seeded crops of each
    photo, the bar's 2 by default; or with ``whole_side`` each photo whole at that long side;
    every photo first rendered as ``rendering`` says) restored once, every candidate kept."""
    head = model.filter_bank
    out = []
    bench = PhotoTasksBenchmark(
        Path(photos), crops_per_photo=crops_per_photo, whole_side=whole_side, rendering=rendering
    )
    for column in bench.columns(None):
        n = len(column) if limit is None else min(limit, len(column))
        desc, cands, targets, inputs = [], [], [], []
        for i in tqdm(range(n), desc=column.key, leave=False):
            case = column[i]
            padded, _ = pad_to_multiple(case.input[None], model.size_multiple)
            y, x, features, context = model.head_inputs(padded)
            h, w = case.input.shape[-2:]
            desc.append(head.network_terms(y, x, features, context).float())
            cands.append(torch.cat([
                head.candidate(j, y, x)[..., :h, :w].float() for j in range(head.num_candidates)
            ]))  # fmt: skip
            targets.append(case.target)
            inputs.append(psnr(case.input[None].clamp(0, 1), case.target[None]))
        out.append(CaseCache(column.key, torch.cat(desc), cands, targets, torch.cat(inputs)))
    return out


def cached_cases(
    model: torch.nn.Module,
    photos: str,
    limit: int | None,
    cache: str | None,
    crops_per_photo: int = 2,
    whole_side: int | None = None,
    rendering: str | None = None,
) -> list[CaseCache]:
    """:func:`restore_cases`, read from ``cache`` when it holds the same photos, crops, limit,
    rendering and head (filters and expert weights), else computed and written there. An expert
    the cache lacks or holds other weights of (and every expert after it) is run again on the
    cached inputs: the network is not."""
    head = model.filter_bank
    stamp = {"photos": str(photos), "limit": limit, "crops_per_photo": crops_per_photo,
             "whole_side": whole_side, "format": 2}  # fmt: skip
    if rendering:  # (absent otherwise: older caches stay valid)
        stamp["rendering"] = rendering
    state = {k: v for k, v in head.state_dict().items() if not k.startswith("gate.")}
    # (nor on what the gate reads beyond the network: its input terms are computed per head)
    state = {k: v for k, v in state.items() if not k.startswith(("descriptor_", "classifier."))}
    if cache and Path(cache).is_file():
        kept = torch.load(cache, weights_only=False)
        cases = [CaseCache(**c) for c in kept["cases"]]
        held = _cached_experts(cases, head)  # None: not a prefix of this head's candidates
        valid = None if held is None else _still_valid(kept["state"], state, held)
        if kept["stamp"] == stamp and valid is not None:
            if valid == head.num_experts:
                print(f"{cache}: restored cases reused")
                return cases
            changed = held - valid
            print(f"{cache}: restored cases reused, {head.num_experts - held} added and "
                  f"{changed} changed expert(s) run on their inputs")  # fmt: skip
            if changed:  # (in place: the cache's lists are the cases', one copy in memory)
                keep = head.num_filters + 2 + valid
                for c in cases:
                    for i, cands in enumerate(c.candidates):
                        c.candidates[i] = cands[:keep]
            _add_experts(cases, model, valid)
            del kept  # the cases hold the tensors now: one copy in memory (caches reach 9 GB)
            _save_cases(cache, stamp, state, cases)
            return cases
    start = time.perf_counter()
    cases = restore_cases(model, photos, limit, crops_per_photo, whole_side, rendering)
    print(f"restored {sum(len(c.targets) for c in cases)} cases in "
          f"{time.perf_counter() - start:.0f} s")  # fmt: skip
    if cache:
        _save_cases(cache, stamp, state, cases)
    return cases


def merge_cases(parts: list[list[CaseCache]]) -> list[CaseCache]:
    """The cases of several photo folders as one set: each column's cases, folder after folder
    (every part has the same columns, in the same order)."""
    if len(parts) == 1:
        return parts[0]
    out = []
    for columns in zip(*parts, strict=True):
        keys = {c.key for c in columns}
        if len(keys) != 1:
            raise ValueError(f"the folders' columns differ: {sorted(keys)}")
        out.append(CaseCache(
            columns[0].key,
            torch.cat([c.descriptors for c in columns]),
            [t for c in columns for t in c.candidates],
            [t for c in columns for t in c.targets],
            torch.cat([c.input_psnr for c in columns]),
        ))  # fmt: skip
    return out


def _save_cases(cache: str, stamp: dict, state: dict, cases: list[CaseCache]) -> None:
    """Write the cases to ``cache`` (fields as they are: ``dataclasses.asdict`` would copy
    every tensor, and a cache of 660 crops × 16 candidates is 9 GB)."""
    fields = [f.name for f in dataclasses.fields(CaseCache)]
    payload = {"stamp": stamp, "state": state,
               "cases": [{k: getattr(c, k) for k in fields} for c in cases]}  # fmt: skip
    torch.save(payload, cache)


def _cached_experts(cases: list[CaseCache], head: torch.nn.Module) -> int | None:
    """How many of ``head``'s experts the cached ``cases`` hold candidates for (``None``: the
    cache has more candidates than the head, or a different number of filters)."""
    held = cases[0].candidates[0].shape[0] - head.num_filters - 2 if cases else 0
    return held if 0 <= held <= head.num_experts else None


def _expert_index(key: str) -> int | None:
    """The number of the expert head state ``key`` belongs to (``None``: not an expert's)."""
    parts = key.split(".")
    return int(parts[1]) if len(parts) > 2 and parts[0] == "experts" else None


def _still_valid(kept: dict[str, Tensor], state: dict[str, Tensor], held: int) -> int | None:
    """How many of the ``held`` cached experts' candidates still hold for a head whose state is
    ``state`` (those before the first expert whose weights differ or are new), or ``None`` when
    anything but an expert differs (the filters: every candidate would)."""
    valid = held
    for key in set(kept) | set(state):
        if key in kept and key in state and torch.equal(kept[key], state[key]):
            continue
        index = _expert_index(key)
        if index is None:
            return None
        valid = min(valid, index)
    return valid


@torch.no_grad()
def _add_experts(cases: list[CaseCache], model: torch.nn.Module, first_new: int) -> None:
    """Append the candidates of ``model``'s experts ``first_new`` … to every cached case, as
    :func:`restore_cases` makes them: an expert restores the (padded) input alone, so the
    network is not run again (as a fit scores an added expert on its stored examples)."""
    head = model.filter_bank
    for c in tqdm(cases, desc="added experts", leave=False):
        for i, cands in enumerate(c.candidates):
            x = cands[1:2]  # the input
            padded, _ = pad_to_multiple(x, model.size_multiple)
            h, w = x.shape[-2:]
            extra = [
                head.candidate(j, padded, padded)[..., :h, :w].float()
                for j in range(head.num_filters + 2 + first_new, head.num_candidates)
            ]  # fmt: skip
            c.candidates[i] = torch.cat([cands, *extra])


def _option_value(default: Any, text: str) -> Any:
    """``text`` as a value of the option whose default is ``default`` (``true``/``false`` for a
    flag: ``bool("false")`` would be true; ``null`` for "not set", and a number for an option
    not set by default, e.g. ``gate_components``; ``task:w/task:w`` for per-task weights and
    ``task/task`` for a task list, ``none`` for neither: ``+`` is in composite task names)."""
    if isinstance(default, dict | list):
        items = [] if text.lower() in ("none", "") else text.split("/")
        if isinstance(default, list):
            return items
        pairs = [item.partition(":") for item in items]
        if any(not sep for _, sep, _ in pairs):
            raise ValueError(f"expected task:weight/task:weight, not {text!r}")
        return {task: float(weight) for task, _, weight in pairs}
    if text.lower() in ("null", "none"):
        return None
    if default is None:
        return int(text)
    if isinstance(default, bool):
        flags = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
        if text.lower() not in flags:
            raise ValueError(f"expected true or false, not {text!r}")
        return flags[text.lower()]
    return type(default)(text)


def floored_gain(columns: dict[str, float], inputs: dict[str, float]) -> float:
    """The bar's selection measure (:func:`aioir.engine.validation.floored_gain`); a column
    without an input PSNR (the clean one: input = target) is an identity column."""
    return validation.floored_gain(columns, {k: inputs.get(k, PSNR_CAP) for k in columns})


def score(head: torch.nn.Module, cases: list[CaseCache]) -> tuple[dict[str, float], dict]:
    """Mean PSNR per column of the gate's blend, and the mean candidate weights per column."""
    columns, weights = {}, {}
    terms_id = head.input_terms_id()  # (a classifier's is a hash of its weights: once)
    with torch.no_grad():
        for c in cases:
            terms = None
            if head.input_terms_size:  # read from the input (candidate 1), once per case
                if c.input_terms is None or c.input_terms_id != terms_id:
                    c.input_terms = torch.cat([head.input_terms(x[1:2]) for x in c.candidates])
                    c.input_terms_id = terms_id
                terms = c.input_terms
            descriptors = head.assemble(c.descriptors, terms)
            w = head.choose(descriptors)
            scores = []
            for wi, cands, target in zip(w, c.candidates, c.targets, strict=True):
                blend = (wi[:, None, None, None] * cands).sum(dim=0).clamp(0, 1)
                scores.append(psnr(blend[None], target[None]))
            # a perfect clean crop scores ∞: capped as validation caps it
            columns[c.key] = float(torch.cat(scores).clamp(max=PSNR_CAP).mean())
            weights[c.key] = w.mean(dim=0)
    return columns, weights


def _top_weights(weights: Tensor, names: list[str], count: int = 3) -> dict[str, float]:
    """The ``count`` heaviest candidates of a column's mean weights, by name."""
    order = weights.argsort(descending=True)[:count].tolist()
    return {names[j]: round(float(weights[j]), 3) for j in order}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the sweep; returns what ``--json`` writes."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a fitted filter-bank model (folder)")
    parser.add_argument(
        "--examples", required=True, action="append",
        help="its gate_examples_file (repeat for its extra_gate_data files, in the fit's order)",
    )  # fmt: skip
    parser.add_argument(
        "--photos", required=True, action="append",
        help="folder of photos (not the bar's); repeat to score several folders as one set",
    )  # fmt: skip
    parser.add_argument("--grid", action="append", default=[], help="OPTION=v1,v2,… (repeat)")
    parser.add_argument("--limit", type=int, default=None, help="cases per column")
    parser.add_argument(
        "--crops-per-photo", type=int, default=2,
        help="seeded crops of each photo per column (the bar: 2); more make a steadier choice",
    )  # fmt: skip
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", default=None, help="write every setting's scores here")
    parser.add_argument(
        "--cache", default=None, action="append",
        help="keep the restored cases in this file (reused while the model's head is the same); "
        "with several --photos, one per folder, in their order",
    )  # fmt: skip
    parser.add_argument(
        "--whole-photos", type=int, default=None, metavar="SIDE",
        help="also score every photo whole at this long side (e.g. 384, as make demo); a "
        "setting is then chosen by the mean of the two floored gains",
    )  # fmt: skip
    parser.add_argument(
        "--whole-cache", default=None, action="append", help="--cache for the whole photos"
    )
    for name, what in RENDERED_KINDS.items():
        parser.add_argument(
            f"--{name}", action="store_true",
            help=f"with --whole-photos, also score the whole photos rendered {what}; one more "
            "gain in the mean",
        )  # fmt: skip
        parser.add_argument(
            f"--{name}-cache", default=None, action="append",
            help=f"--cache for the {name} photos",
        )  # fmt: skip
    parser.add_argument(
        "--keep-gains", type=float, default=None, metavar="FRACTION",
        help="choose only among settings that keep, in every degraded column of every set, at "
        "least FRACTION of the model's own gate's gain over the input (where that is ≥ 0.5 dB): "
        "a setting that gives a task up is not chosen",
    )  # fmt: skip
    parser.add_argument(
        "--save", default=None, metavar="DIR",
        help="write the chosen setting's model to this folder (must not exist or be empty)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    model = load_model(args.model).eval()
    record = model.aioir_metadata["filter_bank"]
    base = FilterBankOptions(**record["filter_bank"])
    seed = int(record["seed"])
    grid: dict[str, list[Any]] = {}
    for item in args.grid:
        name, _, values = item.partition("=")
        if name not in SWEEPABLE:
            parser.error(f"--grid {name}: not a gate option ({', '.join(SWEEPABLE)})")
        try:
            grid[name] = [_option_value(getattr(base, name), v) for v in values.split(",")]
        except ValueError as exc:
            parser.error(f"--grid {name}: {exc}")

    rendered = [name for name in RENDERED_KINDS if getattr(args, name)]
    for name in rendered:
        if not args.whole_photos:
            parser.error(f"--{name} scores whole photos: give --whole-photos too")
    cache_flags = {"--cache": args.cache, "--whole-cache": args.whole_cache}
    cache_flags.update({f"--{n}-cache": getattr(args, f"{n}_cache") for n in RENDERED_KINDS})
    for flag, files in cache_flags.items():
        if files and len(files) > len(args.photos):
            parser.error(f"{flag}: at most one per --photos folder ({len(args.photos)})")
    if args.save:
        from aioir.errors import ConfigError
        from aioir.models.artifacts import check_model_output

        try:
            check_model_output(Path(args.save), overwrite=False)
        except ConfigError as exc:
            parser.error(f"--save: {exc}")
    try:
        saved = saved_gate_examples(model, args.examples)
    except ValueError as exc:
        parser.error(f"--examples: {exc}")
    examples, raw_scores, tasks, extra = saved.examples, saved.scores, saved.tasks, saved.extra
    names = model.candidate_names()
    # every setting's gate first (small); then each set of cases is restored or read, scored by
    # every gate and let go — one set in memory at a time (a set of 38 photos is ~10 GB)
    initial_heads: dict[tuple[int, bool, str, bool], torch.nn.Module] = {}
    trials: list[torch.nn.Module] = []
    results: list[dict[str, Any]] = []
    for values in itertools.product(*grid.values()):
        options = dataclasses.replace(base, **dict(zip(grid, values, strict=True)))
        shape = (options.hidden, options.input_statistics, options.gate_descriptor,
                 options.routed_gate)  # fmt: skip
        if shape not in initial_heads:  # (a classifier-reading head's classifier, reused)
            initial_heads[shape] = unfitted_head(model, options, seed)
        trial = copy.deepcopy(initial_heads[shape])  # fit_gate sets its descriptor statistics
        terms = examples.terms_for(trial)
        if trial.input_terms_size and terms is None:
            parser.error("--examples: not this head's input terms (a fit with this head's "
                         "input statistics or classifier adds them to its file)")  # fmt: skip
        descriptors = trial.assemble(examples.descriptors, terms)
        torch.set_rng_state(examples.rng_state)  # as the fit has it after the examples
        if options.needs_gram and saved.gram is None:
            parser.error("--examples: no Gram matrices of these candidates (gate_mixture_score: "
                         "exact; a fit of the model's config with gate_mixture_score: exact adds "
                         "them)")  # fmt: skip
        expected = train_gate(
            trial, descriptors, raw_scores, options, extra_examples=extra, example_tasks=tasks,
            gram=saved.gram,
        )  # fmt: skip
        trials.append(trial)
        results.append({"setting": {k: getattr(options, k) for k in grid},
                        "train_expected": expected})  # fmt: skip

    kinds = {"crops": {"crops_per_photo": args.crops_per_photo}}
    if args.whole_photos:
        kinds["whole"] = {"whole_side": args.whole_photos}
    caches = {"crops": args.cache, "whole": args.whole_cache}
    for name in rendered:
        kinds[name] = {"whole_side": args.whole_photos, "rendering": name}
        caches[name] = getattr(args, f"{name}_cache")
    inputs: dict[str, dict[str, float]] = {}
    saved: dict[str, dict[str, float]] = {}
    for name, kind in kinds.items():
        files = caches[name] or []
        cases = merge_cases([
            cached_cases(model, photos, args.limit, files[i] if i < len(files) else None, **kind)
            for i, photos in enumerate(args.photos)
        ])  # fmt: skip
        inputs[name] = {c.key: float(c.input_psnr.clamp(max=PSNR_CAP).mean()) for c in cases}
        saved[name] = score(model.filter_bank, cases)[0]  # the model's own gate
        print(f"as saved ({name}): floored gain {floored_gain(saved[name], inputs[name]):+.2f} | "
              + " ".join(f"{k} {v:.2f}" for k, v in saved[name].items()))  # fmt: skip
        prefix = "" if name == "crops" else f"{name}_"
        for trial, result in zip(trials, results, strict=True):
            columns, weights = score(trial, cases)
            gain = floored_gain(columns, inputs[name])
            chosen = {k: _top_weights(w, names) for k, w in weights.items()}
            result.update({f"{prefix}columns": columns, f"{prefix}floored_gain": gain,
                           f"{prefix}weights": chosen})  # fmt: skip
            cells = " ".join(f"{k} {v:.2f}" for k, v in columns.items())
            print(f"{result['setting']} ({name}): floored gain {gain:+.2f} | {cells}", flush=True)
        del cases
    gain_keys = [("" if name == "crops" else f"{name}_") + "floored_gain" for name in kinds]
    for result in results:
        result["choice"] = sum(result[k] for k in gain_keys) / len(gain_keys)
    eligible = list(range(len(results)))
    if args.keep_gains is not None:
        for result in results:
            result["gives_up"] = _given_up(result, saved, inputs, args.keep_gains)
            if result["gives_up"]:
                print(f"{result['setting']}: gives up {', '.join(result['gives_up'])}")
        eligible = [i for i, r in enumerate(results) if not r["gives_up"]]
    best_index = max(eligible, key=lambda i: results[i]["choice"]) if eligible else None
    if best_index is not None:
        best = results[best_index]
        print(f"best: {best['setting']} floored gain {best['choice']:+.2f}"
              + (f" (mean of {', '.join(kinds)})" if len(kinds) > 1 else ""))  # fmt: skip
    for name, values in inputs.items():
        print(f"input ({name}): " + " ".join(f"{k} {v:.2f}" for k, v in values.items()))
    photos_named = args.photos[0] if len(args.photos) == 1 else args.photos
    payload = {"model": args.model, "photos": photos_named, "whole_side": args.whole_photos,
               "inputs": inputs["crops"], "as_saved": saved["crops"], "results": results,
               "date": time.strftime("%Y-%m-%d")}  # fmt: skip
    for name in kinds:
        if name != "crops":
            payload.update({f"{name}_inputs": inputs[name], f"{name}_as_saved": saved[name]})
    if args.json:  # (every setting's scores, a choice or none)
        write_bytes_atomically(
            Path(args.json), json.dumps(payload, indent=1, default=str).encode(), overwrite=True
        )
    if best_index is None:
        parser.error(f"--keep-gains {args.keep_gains}: every setting gives a task up")
    if args.save:
        save_chosen(model, trials[best_index], results[best_index], payload, args.save)
    return payload


def _given_up(
    result: dict[str, Any],
    saved: dict[str, dict[str, float]],
    inputs: dict[str, dict[str, float]],
    fraction: float,
) -> list[str]:
    """The columns (``set column``) where ``result`` keeps less than ``fraction`` of the saved
    gate's gain over the input, among those where that gain is at least 0.5 dB."""
    short = []
    for name, reference in saved.items():
        columns = result["columns" if name == "crops" else f"{name}_columns"]
        for key, value in reference.items():
            floor = inputs[name][key]
            if floor >= PSNR_CAP or value - floor < 0.5:  # clean, or nothing to keep
                continue
            if columns[key] - floor < fraction * (value - floor):
                short.append(f"{name} {key}")
    return short


def save_chosen(
    model: torch.nn.Module,
    head: torch.nn.Module,
    chosen: dict[str, Any],
    payload: dict[str, Any],
    folder: str,
) -> None:
    """Write ``model`` with the chosen setting's gate ``head`` to ``folder``: the record's
    ``filter_bank`` options and expected score as that setting's, its ``val`` dropped (another
    gate's), the sweep's settings and scores under ``gate_sweep``. The sweep fits blind gates
    only: a told gate (``--task``) is the model's own, fitted with its own options, and the
    record says so (``gate_sweep.told_gate``)."""
    from aioir.models import save_model

    metadata = copy.deepcopy(model.aioir_metadata)
    record = metadata["filter_bank"]
    record["filter_bank"].update(chosen["setting"])
    record["gate_expected_psnr"] = chosen["train_expected"]
    record["gate_sweep"] = {
        "from": payload["model"], "photos": payload["photos"], "date": payload["date"],
        "setting": chosen["setting"], "choice": chosen["choice"],
        **{k: v for k, v in chosen.items() if k.endswith("floored_gain")},
    }  # fmt: skip
    if getattr(model.filter_bank, "told_gate", None) is not None:
        own = model.aioir_metadata["filter_bank"]["filter_bank"]  # the options it was fitted with
        record["gate_sweep"]["told_gate"] = {
            "kept_from": payload["model"],
            "fitted_with": {k: own.get(k) for k in chosen["setting"]},
        }
    metadata["val"] = None
    # the sweep's heads were built fresh: the model's fitted filters (and all but the gate) go in
    fitted = model.filter_bank.state_dict()
    own = ("gate.", "descriptor_")
    state = {k: v for k, v in head.state_dict().items() if k.startswith(own)}
    state.update({k: v for k, v in fitted.items() if not k.startswith(own)})
    head.load_state_dict(state)
    model.filter_bank = head
    model.aioir_metadata = metadata
    save_model(model, folder, metadata=metadata)
    print(f"wrote {folder} ({chosen['setting']})")


if __name__ == "__main__":
    main()
