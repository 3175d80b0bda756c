"""``aioir demo``: restore the bundled sample photos and write a comparison page (``make demo``).

Exit status: 0 written, 1 failed (bad model, existing folder without --overwrite, unwritable
output), 2 usage error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from aioir.cli import _options as options
from aioir.cli._types import positive_int
from aioir.tasks import CORE_TASKS, canonical_task

# the same as aioir.apps.demo's (not imported here: it needs torch; tests check they agree)
DEFAULT_OUTPUT = Path("outputs/demo")
DEFAULT_SIZE = 384
DEFAULT_TASKS = CORE_TASKS


def _tasks(value: str) -> tuple[str, ...]:
    tasks = tuple(canonical_task(t) for t in value.split(",") if t.strip())
    if not tasks:
        raise argparse.ArgumentTypeError(f"no task in {value!r}")
    return tasks


_HELP = "restore the bundled sample photos and write a comparison page"
_DESCRIPTION = """\
Degrade the bundled sample photos with each task's degradations (noise, rain, haze, low light,
blur, underwater; seeded per task and photo, so every run is the same), restore them with the
model, and with its test-time adaptation (TTA) where the model has one, then write under
--output: clean/, degraded/<task>/, restored/<task>/, restored_tta/<task>/ (PNGs), grid.png (a
comparison grid), index.html (grid, metrics, every image), metrics.json and metrics.csv.
Prints a PSNR/SSIM table (protocol clean). An existing, non-empty output folder is refused
unless --overwrite is given (then the demo's own files in it are replaced).

exit status: 0 written, 1 failed (one line on stderr), 2 usage error"""


def _demo(args: argparse.Namespace) -> int:
    from aioir.apps.demo import run_demo
    from aioir.errors import AioirError

    try:
        result = run_demo(
            args.output,
            model=args.model,
            size=args.size,
            tasks=args.tasks,
            tta=not args.no_tta,
            overwrite=args.overwrite,
            device=args.device,
            # a bar only on a terminal: CI logs (make demo) would get one line per update
            progress=not args.quiet and sys.stderr.isatty(),
        )
    except AioirError as exc:
        if getattr(args, "debug", False):
            raise
        return options.fail("demo", str(exc))
    print(result.table())
    if not args.quiet:
        total = result.seconds.get("total", 0.0)
        options.say(
            "demo", f"wrote {args.output} in {total:.0f} s (open {args.output / 'index.html'})"
        )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``demo`` command."""
    p = options.add_command(sub, "demo", _demo, _HELP, _DESCRIPTION)
    options.add_output_argument(
        p, "DIR", f"output folder (default {DEFAULT_OUTPUT})", default=DEFAULT_OUTPUT
    )
    options.add_model_argument(p)
    p.add_argument(
        "--size",
        type=positive_int,
        default=DEFAULT_SIZE,
        metavar="N",
        help=f"long side of the demo images in pixels (default {DEFAULT_SIZE})",
    )
    p.add_argument(
        "--tasks",
        type=_tasks,
        default=DEFAULT_TASKS,
        metavar="T1,T2",
        help=f"degradation tasks, comma-separated (default {','.join(DEFAULT_TASKS)})",
    )
    p.add_argument("--no-tta", action="store_true", help="skip the test-time adaptation column")
    options.add_overwrite_argument(p, "replace the demo's files in an existing folder")
    options.add_device_argument(p)
    options.add_quiet_argument(p, "no progress bar or messages")
