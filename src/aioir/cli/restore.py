"""``aioir restore``: restore image files and folders with a trained model.

Exit status: 0 every input restored, 1 some inputs failed (the others are written), 2 usage
error (an input that matches no image, bad option values, a model that cannot be used).
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

from aioir.cli import _options as options
from aioir.cli._model_options import add_model_option_arguments, model_options_from_args
from aioir.cli._tta import add_tta_arguments
from aioir.cli._types import positive_int, unit_float

if TYPE_CHECKING:
    from aioir.models.protocols import TaskSuggestion

_HELP = "restore image files or folders with a trained model"
_DESCRIPTION = """\
Restore images (noise, rain, haze, low light, blur, underwater colour cast) and write
OUTPUT/<name>.png for each input, keeping bit depth, alpha and grayscale; for one input, OUTPUT
may be the image file to write instead (fixed.png, fixed.jpg: the format follows its suffix;
an existing folder is always the folder). INPUT may be files,
folders (with --recursive, their sub-folders too; the sub-folder layout is kept) or glob
patterns. Existing outputs are left alone: an input whose output exists fails, unless
--overwrite (replace it) or --skip-existing (skip it: a re-run resumes an interrupted one) is
given. The output folder is checked for writing before the first image.

A model that restores blind and cautiously where unsure (the default model) says so on stderr
for an image it read as degraded but held back on, with the --task that would restore it as
such (not with --quiet); --follow-hint restores such an image again as the hinted task and
writes that instead, where the model is sure enough of the hint to follow it unseen.

exit status: 0 all restored (or skipped), 1 some inputs failed (one line each on stderr),
2 usage error (also: an output folder that cannot be written)"""


def _restore(args: argparse.Namespace) -> int:
    from aioir.errors import AioirError
    from aioir.restore.batch import (
        check_output_folder,
        collect_inputs,
        output_is_file,
        plan_jobs,
        run_batch,
    )

    debug = bool(getattr(args, "debug", False))
    try:
        items = collect_inputs(args.inputs, recursive=args.recursive, exclude=args.output)
    except AioirError as exc:
        return options.fail("restore", str(exc), 2)
    one_file = output_is_file(args.output)
    if args.output.exists() and not args.output.is_dir() and not one_file:
        return options.fail("restore", f"{args.output}: exists and is not a folder", 2)
    if args.overwrite and args.skip_existing:
        return options.fail("restore", "--overwrite and --skip-existing exclude each other", 2)
    try:  # before loading the model and restoring anything
        jobs = plan_jobs(items, args.output, compare=args.compare)
        check_output_folder(args.output.parent if one_file else args.output)
    except AioirError as exc:
        return options.fail("restore", str(exc), 2)

    from tqdm import tqdm

    from aioir.restore.api import Restorer

    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    try:
        restorer = Restorer(
            args.model,
            **options.restoration_keywords(args),
            tile_overlap=args.tile_overlap,
            tile_batch_size=args.tile_batch_size,
            strength=args.strength,
            model_options=model_options_from_args(args),
        )
    except AioirError as exc:
        if debug:
            traceback.print_exc()
        return options.fail("restore", str(exc), 2)
    if getattr(restorer.adapter, "needs_task", False):
        return options.fail(
            "restore",
            "this test-time adaptation needs the images' task: pass --tta-task TASK "
            "(UDAIR's faithful mode: the authors take it from the test-set name)",
            2,
        )

    followed: dict[str, int] = {}  # task → photos restored again as their hint
    held: dict[str, int] = {}  # task → photos hinted on and left as restored blind

    def after_image(source: Path) -> None:
        if args.explain:
            for line in restorer.decisions() or ["the model reports no decisions"]:
                print(f"{source}: {line}", flush=True)
        hint = restorer.suggested_task()
        if hint is None:
            return
        was_followed = restorer.followed_hint() is not None
        tally = followed if was_followed else held
        tally[hint.task] = tally.get(hint.task, 0) + 1
        if not args.quiet:  # (under the progress bar, not through it)
            line = followed_line(source, hint) if was_followed else hint_line(source, hint)
            tqdm.write(f"aioir restore: {line}", file=sys.stderr)

    try:
        result = run_batch(
            restorer,
            jobs,
            overwrite=args.overwrite,
            skip_existing=args.skip_existing,
            progress=False if args.quiet else None,
            debug=debug,
            on_image=after_image,
        )
    except AioirError as exc:  # an output sub-folder that cannot be written (before any image)
        return options.fail("restore", str(exc), 2)
    if not args.quiet or result.failures:
        todo = len(jobs) - len(result.skipped)
        where = "as" if one_file else "into"
        summary = f"restored {len(result.written)} of {todo} images {where} {args.output}"
        if result.skipped:
            summary += f"; skipped {len(result.skipped)} whose output exists (--skip-existing)"
        if (followed or held) and not one_file:
            summary += "; " + hint_summary(followed, held)
        options.say("restore", summary)
    return result.exit_status


def hint_line(source: Path, hint: TaskSuggestion) -> str:
    """The hint printed after an image the model held back on (``aioir restore``, not with
    ``--quiet``): what it read, how sure it was, and the flag that restores it as such."""
    return (
        f"{source}: looks like {hint.task} ({hint.probability:.2f}) but was restored "
        f"cautiously; if it is {hint.task}, --task {hint.task} restores it as such"
    )


def hint_summary(followed: dict[str, int], held: dict[str, int]) -> str:
    """The batch summary's note on hinted photos, per task: those restored again as their hint
    (``--follow-hint``) and those left as restored blind."""

    def photos(counts: dict[str, int]) -> str:
        n = sum(counts.values())
        tasks = ", ".join(f"{t} {k}" for t, k in sorted(counts.items(), key=lambda tk: -tk[1]))
        return f"{n} {'photo' if n == 1 else 'photos'} ({tasks})"

    parts = [f"{photos(followed)} restored again as their hint"] if followed else []
    if held:
        parts.append(f"{photos(held)} held back on: see the hints above (--task)")
    return "; ".join(parts)


def followed_line(source: Path, hint: TaskSuggestion) -> str:
    """The line printed after an image restored again as its hint (``--follow-hint``)."""
    return (
        f"{source}: looks like {hint.task} ({hint.probability:.2f}): restored as "
        f"{hint.task} (--follow-hint)"
    )


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``restore`` command."""
    p = options.add_command(sub, "restore", _restore, _HELP, _DESCRIPTION)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or globs")
    options.add_output_argument(
        p,
        "PATH",
        "output folder (default: ./restored), or for one input the image file to write "
        "(e.g. fixed.jpg)",
        default=Path("restored"),
    )
    options.add_model_argument(p)
    options.add_checkpoint_arguments(p)
    add_tta_arguments(p)
    add_model_option_arguments(p)
    options.add_self_ensemble_argument(p)
    options.add_follow_hint_argument(p)
    p.add_argument(
        "--strength",
        type=unit_float,
        default=1.0,
        metavar="S",
        help="apply this fraction of the restoration, 0–1: input + S·(restored − input) "
        "(default 1; lower it when the model over-corrects a photo)",
    )
    options.add_tile_arguments(p)
    p.add_argument(
        "--tile-batch-size",
        type=positive_int,
        default=None,
        metavar="N",
        help="tiles per forward pass (default 1 on CPU, 4 on GPU)",
    )
    options.add_device_argument(p)
    p.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        metavar="N",
        help="CPU threads for the network (default: PyTorch's, one per core; on a busy machine "
        "fewer can be faster)",
    )
    p.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16", "fp16"),
        default="auto",
        help="autocast precision (auto: fp32 on CPU, bf16 or fp16 on GPU)",
    )
    options.add_overwrite_argument(p, "replace existing outputs")
    p.add_argument(
        "--skip-existing",
        action="store_true",
        help="skip inputs whose outputs exist (resume an interrupted run; not with --overwrite)",
    )
    p.add_argument(
        "--compare", action="store_true", help="also write <name>_compare.png (input | output)"
    )
    p.add_argument("-r", "--recursive", action="store_true", help="look into sub-folders")
    options.add_quiet_argument(p, "no progress bar or summary")
