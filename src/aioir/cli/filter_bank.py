"""``aioir fit-filter-bank``: wrap a trained restorer in a fitted filter bank (no training)."""

from __future__ import annotations

import argparse
from pathlib import Path

from aioir.cli import _options as options

_DESCRIPTION = """\
Wrap a trained restorer (a saved model, or a registered name with --set model.checkpoint=…)
in a filter-bank head and fit it, the network frozen: least-squares linear filters on degraded
training crops, then the per-image gate on restored ones; validate the result on the data's
validation crops and write a saved-model folder (weights, config.json listing the wrapper, the
base model's source bank and metadata, the fit's record and val scores). Saved models listed
in filter_bank.experts (e.g. a small trained denoiser) join the candidates, frozen. See
configs/udair/filter-bank-v57-classifier-30k-from-v11.yaml, which rebuilds the shipped
default model (v12, its gates started from v11's; a config may name a base config it extends),
configs/udair/filter-bank-v50-brightening-gamma-from-v10-slow.yaml (v11),
configs/udair/filter-bank-v46-shadow-highlight-15k-cross-fit.yaml (v10),
configs/udair/filter-bank-v28-wide-shake-expert.yaml (v9), configs/udair/filter-bank-v4.yaml
(v4) and configs/udair/filter-bank.yaml (v3, from v2).

example:
  aioir fit-filter-bank --config configs/udair/filter-bank-v46-shadow-highlight-15k-cross-fit.yaml \\
      --output runs/v10 --set data.root=data/photos1024-v4
  aioir fit-filter-bank --config configs/udair/filter-bank-v57-classifier-30k-from-v11.yaml \\
      --output models/v12 --set data.root=data/photos1024-v4

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
        options.say(
            "fit-filter-bank",
            f"{record['filters']} filters, gate on {record['gate_examples']} crops{score}, "
            f"{record['wall_time_s']:.0f} s; wrote {result.output}",
        )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``fit-filter-bank`` command."""
    p = options.add_command(
        sub, "fit-filter-bank", _fit, "wrap a trained model in a fitted filter bank", _DESCRIPTION
    )
    p.add_argument("--config", type=Path, required=True, help="YAML fit config (see configs/)")
    options.add_output_argument(p, "DIR", "saved-model folder", required=True)
    options.add_set_argument(
        p, "override config values (YAML syntax), e.g. --set data.root=DIR seed=125"
    )
    options.add_overwrite_argument(p, "replace an existing output")
    options.add_quiet_argument(p, "no progress bars or summary")
