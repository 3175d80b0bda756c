"""``aioir restore``: restore image files and folders with a trained model.

Exit status: 0 every input restored, 1 some inputs failed (the others are written), 2 usage
error (an input that matches no image, bad option values, a model that cannot be used).
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

from aioir.cli._options import add_device_argument, add_self_ensemble_argument
from aioir.cli._tta import add_tta_arguments, tta_from_args
from aioir.cli._types import non_negative_int, positive_int, unit_float

_DESCRIPTION = """\
Restore images (noise, rain, haze, low light, blur, underwater colour cast) and write
OUTPUT/<name>.png for each input, keeping bit depth, alpha and grayscale. INPUT may be files,
folders (with --recursive, their sub-folders too; the sub-folder layout is kept) or glob
patterns. Existing outputs are left alone unless --overwrite is given.

exit status: 0 all restored, 1 some inputs failed (one line each on stderr), 2 usage error"""


def _usage_error(message: str) -> int:
    print(f"aioir restore: error: {message}", file=sys.stderr)
    return 2


def _restore(args: argparse.Namespace) -> int:
    from aioir.errors import AioirError
    from aioir.restore.batch import collect_inputs, plan_jobs, run_batch

    debug = bool(getattr(args, "debug", False))
    try:
        items = collect_inputs(args.inputs, recursive=args.recursive, exclude=args.output)
    except AioirError as exc:
        return _usage_error(str(exc))
    if args.output.exists() and not args.output.is_dir():
        return _usage_error(f"{args.output}: exists and is not a folder")
    jobs = plan_jobs(items, args.output, compare=args.compare)

    from aioir.restore.api import Restorer

    try:
        restorer = Restorer(
            args.model,
            checkpoint=args.checkpoint,
            device=args.device,
            tile=args.tile,
            tile_overlap=args.tile_overlap,
            tile_batch_size=args.tile_batch_size,
            precision=args.precision,
            tta=tta_from_args(args),
            self_ensemble=args.self_ensemble,
            allow_untrained=args.allow_untrained,
            strength=args.strength,
        )
    except AioirError as exc:
        if debug:
            traceback.print_exc()
        return _usage_error(str(exc))
    result = run_batch(
        restorer,
        jobs,
        overwrite=args.overwrite,
        progress=False if args.quiet else None,
        debug=debug,
    )
    if not args.quiet or result.failures:
        done = len(result.written)
        print(
            f"aioir restore: restored {done} of {len(jobs)} images into {args.output}",
            file=sys.stderr,
        )
    return result.exit_status


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``restore`` command."""
    p = sub.add_parser(
        "restore",
        help="restore image files or folders with a trained model",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or globs")
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("restored"),
        metavar="DIR",
        help="output folder (default: ./restored)",
    )
    p.add_argument(
        "--model",
        default="default",
        metavar="NAME_OR_PATH",
        help="registered model name or saved-model path (default: the shipped default model)",
    )
    p.add_argument("--checkpoint", type=Path, default=None, help="weights for a model name")
    p.add_argument(
        "--allow-untrained",
        action="store_true",
        help="allow a model name without weights (random weights; for tests only)",
    )
    add_tta_arguments(p)
    add_self_ensemble_argument(p)
    p.add_argument(
        "--strength",
        type=unit_float,
        default=1.0,
        metavar="S",
        help="apply this fraction of the restoration, 0–1: input + S·(restored − input) "
        "(default 1; lower it when the model over-corrects a photo)",
    )
    p.add_argument(
        "--tile",
        type=non_negative_int,
        default=None,
        metavar="N",
        help="restore in N×N tiles (0: never tile; default: decide from size and free memory)",
    )
    p.add_argument(
        "--tile-overlap",
        type=non_negative_int,
        default=32,
        metavar="N",
        help="tile overlap (default 32)",
    )
    p.add_argument(
        "--tile-batch-size",
        type=positive_int,
        default=None,
        metavar="N",
        help="tiles per forward pass (default 1 on CPU, 4 on GPU)",
    )
    add_device_argument(p)
    p.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16", "fp16"),
        default="auto",
        help="autocast precision (auto: fp32 on CPU, bf16 or fp16 on GPU)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument(
        "--compare", action="store_true", help="also write <name>_compare.png (input | output)"
    )
    p.add_argument("-r", "--recursive", action="store_true", help="look into sub-folders")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(handler=_restore)
