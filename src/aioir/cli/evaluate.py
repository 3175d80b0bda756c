"""``aioir evaluate``: score a model (or a classical method) on named benchmarks.

Prints one markdown table per benchmark, each under its metric-protocol header; ``--json`` keeps
every per-image number, ``--csv`` the summary rows.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from aioir.cli import _options as options
from aioir.cli._model_options import add_model_option_arguments, model_options_from_args
from aioir.cli._tta import add_tta_arguments

_HELP = "score a model or classical method on named benchmarks"
_DESCRIPTION = (
    "Evaluate a model on benchmarks and print one table per benchmark, headed by its "
    "metric protocol. Benchmarks: promptir-3task, promptir-5task, udair-source, "
    "udair-target (need --data-root), paired:DIR[:TASK] (DIR/input <-> DIR/target), "
    "synthetic:DIR[:TASKS] (clean photos degraded on the fly, seeded per image; a photo "
    "corpus folder uses its test split), composite:DIR[:COMBOS] (the same with composite "
    "degradations such as lowlight+haze; default: 11 CDD-11-like combinations), "
    "photo-tasks:DIR[:COLUMNS] (the per-task bar: seeded 256² crops of a corpus's test photos, "
    "one pinned degradation per column: σ15, σ25, σ50, camera noise, haze, low light, rain, "
    "underwater, motion blur, clean). Relative DIRs are resolved against --data-root when it "
    "is given. Model options (e.g. --adapter-mode) are the ones aioir restore takes; the value "
    "'case' means each case's task (--task case: the oracle)."
)


def _evaluate(args: argparse.Namespace) -> int:
    from aioir.errors import ConfigError
    from aioir.evaluate.benchmarks import get_benchmark
    from aioir.evaluate.methods import load_method
    from aioir.evaluate.report import to_markdown, write_csv, write_json
    from aioir.evaluate.runner import evaluate
    from aioir.metrics import get_protocol

    if args.tile is not None and args.tile < 0:
        raise ConfigError(f"--tile must be >= 0, not {args.tile}")
    if args.protocol is not None:
        get_protocol(args.protocol)
    # validate every benchmark (names, data root) before loading a model
    benchmarks = [
        get_benchmark(b, crop=args.crop, whole_side=args.whole_side, rendering=args.rendering)
        for b in args.benchmark
    ]
    for bench in benchmarks:
        if bench.needs_root and args.data_root is None:
            raise ConfigError(f"benchmark {bench.name} needs --data-root (the dataset root)")
    if args.data_root is not None and not args.data_root.is_dir():
        raise ConfigError(f"{args.data_root}: data root does not exist or is not a folder")
    method = load_method(
        args.model,
        **options.restoration_keywords(args),
        model_options=model_options_from_args(args),
    )
    results = []
    for bench in benchmarks:
        result = evaluate(
            method,
            bench,
            args.data_root,
            protocol=args.protocol,
            noise_rounding=args.noise_rounding,
            limit=args.limit,
            strict_counts=not args.no_strict_counts,
            niqe_mode=args.niqe,
            save_images=args.save_images,
            progress=not args.no_progress,
        )
        results.append(result)
        print(to_markdown(result))
        sys.stdout.flush()
    if args.json is not None:
        print(f"wrote {write_json(args.json, results)}", file=sys.stderr)
    if args.csv is not None:
        print(f"wrote {write_csv(args.csv, results)}", file=sys.stderr)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` command."""
    p = options.add_command(sub, "evaluate", _evaluate, _HELP, _DESCRIPTION)
    options.add_model_argument(
        p,
        "default (the shipped default model), a registered name, a saved-model path, or "
        "classical:NAME "
        "(auto, identity, cbm3d, dcp, lime, adaptive-gamma, grayworld, unsharp, median-derain)",
        metavar=None,
        required=True,
    )
    options.add_checkpoint_argument(p)
    options.add_bank_argument(p)
    p.add_argument(
        "--benchmark",
        action="append",
        required=True,
        metavar="NAME",
        help="benchmark to run (repeatable)",
    )
    p.add_argument("--data-root", type=Path, default=None, help="dataset root folder")
    p.add_argument(
        "--protocol",
        default=None,
        help="metric protocol: promptir, basicsr-y, udair or clean (default: the benchmark's)",
    )
    add_tta_arguments(p)
    options.add_self_ensemble_argument(p)
    options.add_follow_hint_argument(p)
    p.add_argument(
        "--tile", type=int, default=None, help="restore in N×N tiles (default: one full pass)"
    )
    p.add_argument("--save-images", type=Path, default=None, metavar="DIR", help="keep outputs")
    p.add_argument("--json", type=Path, default=None, metavar="FILE", help="write JSON results")
    p.add_argument("--csv", type=Path, default=None, metavar="FILE", help="write CSV summary")
    p.add_argument(
        "--limit", type=int, default=None, metavar="N", help="first N images per dataset only"
    )
    options.add_device_argument(p)
    p.add_argument("--precision", default="fp32", help="fp32 (default), bf16 or fp16 for networks")
    p.add_argument(
        "--noise-rounding",
        choices=("round", "truncate"),
        default=None,
        help="8-bit snapping of seeded CBSD68 noise (default: truncate under the promptir "
        "protocol, as PromptIR's code does; round otherwise)",
    )
    p.add_argument(
        "--niqe",
        choices=("auto", "all", "off"),
        default="auto",
        help="NIQE where there is no ground truth (auto), on every output (all), or never",
    )
    p.add_argument(
        "--crop",
        type=int,
        default=None,
        help="synthetic:/composite: benchmarks: seeded N×N crop per image (composite: 256); "
        "photo-tasks: crop side (default 256)",
    )
    p.add_argument(
        "--whole-side",
        type=int,
        default=None,
        metavar="N",
        help="photo-tasks: every photo whole, its long side resized to N px, instead of crops",
    )
    p.add_argument(
        "--rendering",
        default=None,
        metavar="NAME",
        help="photo-tasks: render every clean photo so first and score against that "
        "(pale: bright, flat, grey; dark: dim, exposure scaled down; defocus: out of focus; grey: a "
        "black-and-white photo, the degraded input grey too; high-key: bright, near-white, "
        "its dark accents kept; low-key: dark, its highlights kept)",
    )
    p.add_argument(
        "--no-strict-counts",
        action="store_true",
        help="warn instead of failing when case counts differ from the protocol",
    )
    p.add_argument(
        "--allow-untrained",
        action="store_true",
        help="allow a registered model without weights (smoke tests only)",
    )
    options.add_no_progress_argument(p)
    add_model_option_arguments(p, explain=False)
