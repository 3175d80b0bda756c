"""``aioir serve``: a restore page in the browser (:mod:`aioir.apps.serve`).

Exit status: 0 stopped (Ctrl-C), 1 the server could not start (port in use), 2 usage error (a
model that cannot be used).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from aioir.cli import _options as options
from aioir.cli._types import non_negative_int, positive_float, positive_int

# the same as aioir.apps.serve's (not imported here: the command line imports no torch)
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
DEFAULT_MODELS_DIR = Path("checkpoints")
DEFAULT_MAX_UPLOAD_MB = 256

_HELP = "serve a restore page in the browser (this computer only)"
_DESCRIPTION = f"""\
Serve a page where photos are dropped, restored with a model picked from a menu, compared
before/after with a split slider at a chosen strength, and downloaded in their own format and
bit depth. The menu offers each --model (default: the shipped default model) and every saved-model
folder inside each --models-dir (default: ./{DEFAULT_MODELS_DIR} when it exists), and the page can
name another saved-model folder on this computer (unless --no-model-paths). Photos are restored
one at a time, large ones in tiles with their progress shown; nothing is sent anywhere else, and
the server listens on {DEFAULT_HOST} (this computer only) unless --host says otherwise.

exit status: 0 stopped with Ctrl-C, 1 the server could not start, 2 usage error"""


def _serve(args: argparse.Namespace) -> int:
    from aioir.apps.serve import model_choices, serve
    from aioir.errors import AioirError

    models = list(args.model or ["default"])
    if "default" not in models:
        models.append("default")
    folders = args.models_dir if args.models_dir is not None else [DEFAULT_MODELS_DIR]
    restorer_options = {
        "device": args.device,
        "tile": args.tile,
        "tile_overlap": args.tile_overlap,
        "precision": args.precision,
    }
    try:
        serve(
            model_choices(models, folders),
            host=args.host,
            port=args.port,
            restorer_options=restorer_options,
            open_browser=args.open,
            quiet=args.quiet,
            allow_model_paths=not args.no_model_paths,
            max_upload=int(args.max_upload_mb * 2**20),
            memory_budget=int(args.memory_gb * 2**30),
            log_requests=args.log_requests,
        )
    except AioirError as exc:
        if getattr(args, "debug", False):
            raise
        return options.fail("serve", str(exc), 2)
    except OSError as exc:
        return options.fail("serve", f"{args.host}:{args.port}: {exc.strerror or exc}")
    except KeyboardInterrupt:
        if not args.quiet:
            options.say("serve", "stopped")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``serve`` command."""
    p = options.add_command(sub, "serve", _serve, _HELP, _DESCRIPTION)
    p.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"address to listen on (default {DEFAULT_HOST}: this computer only)",
    )
    p.add_argument(
        "--port",
        type=non_negative_int,
        default=DEFAULT_PORT,
        help=f"port (default {DEFAULT_PORT}; 0: any free port)",
    )
    p.add_argument(
        "--model",
        action="append",
        metavar="NAME_OR_PATH",
        help="a model the page offers (repeatable; the first is preselected; default: the "
        "shipped default model, which is always offered)",
    )
    p.add_argument(
        "--models-dir",
        action="append",
        type=Path,
        metavar="DIR",
        help=f"offer every saved-model folder inside DIR (repeatable; default ./{DEFAULT_MODELS_DIR})",
    )
    p.add_argument(
        "--no-model-paths",
        action="store_true",
        help="do not let the page load a saved-model folder it names",
    )
    options.add_tile_arguments(p)
    options.add_device_argument(p)
    p.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16", "fp16"),
        default="auto",
        help="autocast precision (auto: fp32 on CPU, bf16 or fp16 on GPU)",
    )
    p.add_argument(
        "--max-upload-mb",
        type=positive_int,
        default=DEFAULT_MAX_UPLOAD_MB,
        metavar="MB",
        help=f"largest photo file accepted (default {DEFAULT_MAX_UPLOAD_MB})",
    )
    p.add_argument(
        "--memory-gb",
        type=positive_float,
        default=2.0,
        metavar="GB",
        help="memory kept for restored photos awaiting download; the oldest expire first "
        "(default 2)",
    )
    p.add_argument("--open", action="store_true", help="open the page in this computer's browser")
    p.add_argument("--log-requests", action="store_true", help="print every HTTP request")
    options.add_quiet_argument(p, "no messages but errors")
