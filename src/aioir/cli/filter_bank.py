"""``aioir fit-filter-bank``: wrap a trained restorer in a fitted filter bank (no training)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from aioir.cli._options import add_set_argument

_DESCRIPTION = """\
Wrap a trained restorer (a saved model, or a registered name with --set model.checkpoint=…)
in a filter-bank head and fit it, the network frozen: least-squares linear filters on degraded
training crops, then the per-image gate on restored ones; validate the result on the data's
validation crops and write a saved-model folder (weights, config.json listing the wrapper, the
base model's source bank and metadata, the fit's record and val scores). See
configs/udair/filter-bank.yaml, which rebuilds the shipped default model (v3) from v2.

example:
  aioir fit-filter-bank --config configs/udair/filter-bank.yaml --output models/v3 \\
      --set data.root=data/photos1024

exit status: 0 written, 1 failed (bad config, model or data; output exists), 2 usage error"""


def _fit(args: argparse.Namespace) -> int:
    from aioir.engine.filter_bank import fit, load_fit_config
    from aioir.models.artifacts import check_model_output

    overrides = list(args.set or [])
    if args.quiet:
        overrides.append("runtime.progress_bar=false")
    config = load_fit_config(args.config, overrides)
    check_model_output(args.output, args.overwrite)  # before the (slow) fit
    result = fit(config, args.output, overwrite=args.overwrite)
    if not args.quiet:
        record, val = result.record, result.val or {}
        score = f"; val PSNR {val['val/psnr']:.2f} dB" if "val/psnr" in val else ""
        if "val/min_gain" in val:
            score += f", min gain {val['val/min_gain']:+.2f} dB"
        print(
            f"aioir fit-filter-bank: {record['filters']} filters, gate on "
            f"{record['gate_examples']} crops{score}, {record['wall_time_s']:.0f} s; "
            f"wrote {result.output}",
            file=sys.stderr,
        )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``fit-filter-bank`` command."""
    p = sub.add_parser(
        "fit-filter-bank",
        help="wrap a trained model in a fitted filter bank",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", type=Path, required=True, help="YAML fit config (see configs/)")
    p.add_argument(
        "-o", "--output", type=Path, required=True, metavar="DIR", help="saved-model folder"
    )
    add_set_argument(p, "data.root=DIR seed=125")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars or summary")
    p.set_defaults(handler=_fit)
