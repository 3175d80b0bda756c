"""``aioir adapt``: adapt a UDAIR model to a folder of unlabelled target-domain images.

Exit status: 0 written, 1 the adaptation failed (bad model, no images, output exists), 2 usage.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from aioir.cli._options import add_device_argument
from aioir.cli._types import positive_float, positive_int

_DESCRIPTION = """\
Domain adaptation (UDAIR, arXiv v1): learn the three distribution adapters once from a folder
of unlabelled target-domain images, aligning their degradation-embedding statistics (CORAL)
with the model's source bank, and save the adapted model (weights, config with the adapters
enabled, bank) to OUTPUT. Each image is assigned its nearest source cluster blindly unless
--task is given. The saved model is used like any other: aioir restore --model OUTPUT ...

exit status: 0 written, 1 failed, 2 usage error"""


def _adapt(args: argparse.Namespace) -> int:
    from aioir.errors import ConfigError
    from aioir.restore.adapt import AdaptConfig, adapt_to_folder, save_adapted
    from aioir.restore.api import resolve_device
    from aioir.restore.resolve import resolve_model

    out = Path(args.output)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not args.overwrite:
        raise ConfigError(f"{out}: exists; pass --overwrite to replace it")
    device = resolve_device(args.device)
    model = resolve_model(args.model).to(device)
    if getattr(model, "source_bank", None) is None:
        raise ConfigError(
            f"{args.model}: not a UDAIR model saved with its source bank (bank.safetensors)"
        )
    config = AdaptConfig(
        task=args.task,
        steps=args.steps,
        lr=args.lr,
        batch_size=args.batch_size,
        crop=args.crop,
        seed=args.seed,
    )
    if args.task is not None:
        model.source_bank.task_index(args.task)  # ConfigError naming the known tasks

    def progress(step: int, loss: float) -> None:
        if not args.quiet and (step % 25 == 0 or step == args.steps):
            print(f"aioir adapt: step {step}/{args.steps}  CORAL {loss:.4g}", file=sys.stderr)

    result = adapt_to_folder(model, args.target, config, progress=progress)
    save_adapted(model.cpu(), out, result, overwrite=args.overwrite)
    if not args.quiet:
        s = result.summary()
        print(
            f"aioir adapt: {s['images']} images, clusters {s['clusters']}; probe CORAL "
            f"{s['initial_loss']:.4g} -> {s['final_loss']:.4g}; saved {out}",
            file=sys.stderr,
        )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``adapt`` command."""
    p = sub.add_parser(
        "adapt",
        help="adapt a UDAIR model to a folder of target-domain images",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", required=True, metavar="PATH", help="saved UDAIR model with bank")
    p.add_argument("--target", type=Path, required=True, metavar="DIR", help="target images")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="DIR", help="output model")
    p.add_argument("--task", default=None, help="assign every image to this task (default: blind)")
    p.add_argument("--steps", type=positive_int, default=200, help="optimiser steps (default 200)")
    p.add_argument("--lr", type=positive_float, default=1e-3, help="AdamW lr (default 1e-3)")
    p.add_argument("--batch-size", type=positive_int, default=8, help="crops per step (default 8)")
    p.add_argument(
        "--crop", type=positive_int, default=None, help="crop side (default: bank patch)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    add_device_argument(p)
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress")
    p.set_defaults(handler=_adapt)
