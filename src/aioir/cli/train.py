"""``aioir train``: train a restoration model from a YAML config (see ``configs/``).

Also runnable as ``python -m aioir.cli.train …`` (the same arguments), which multi-process
(DDP) launches re-execute.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from aioir.cli import _options as options

_HELP = "train a model from a YAML config"
_DESCRIPTION = (
    "Train a restoration model as a YAML config describes (model, data, losses, "
    "optimiser, schedule). Writes checkpoints (best by val PSNR + last), logs and a "
    "final export (weights, the artefacts of the training extras such as a source bank, "
    "training.json)."
)


def _devices(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number of devices or 'auto', got {text!r}"
        ) from None
    if n < 1:
        raise argparse.ArgumentTypeError("--devices must be ≥ 1")
    return n


def _train(args: argparse.Namespace) -> int:
    from aioir.engine.config import load_config
    from aioir.engine.run import train

    overrides = list(args.set or [])
    if args.max_steps is not None:
        overrides.append(f"trainer.max_steps={args.max_steps}")
    if args.devices is not None:
        overrides.append(f"trainer.devices={args.devices}")
    if args.accelerator is not None:
        overrides.append(f"trainer.accelerator={args.accelerator}")
    config = load_config(args.config, overrides)
    if args.vgg_weights is not None:  # every configured loss that takes VGG-16 weights
        from aioir.losses.composite import with_loss_option

        config.losses = with_loss_option(
            config.losses, "vgg_weights", str(args.vgg_weights), "--vgg-weights"
        )
    output = args.output or Path("runs") / args.config.stem
    result = train(config, output, resume=args.resume)
    if result.export_dir is not None:
        best = result.record.get("best_val_psnr")
        score = f", best val PSNR {best:.2f} dB" if best is not None else ""
        monitor, value = result.record.get("monitor"), result.record.get("best_val_score")
        if monitor not in (None, "val/psnr") and value is not None:
            score += f" ({monitor} {value:+.2f})"
        print(f"trained {result.steps} steps{score}; exported to {result.export_dir}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``train`` command."""
    p = options.add_command(sub, "train", _train, _HELP, _DESCRIPTION)
    p.add_argument("--config", type=Path, required=True, help="YAML config (see configs/)")
    p.add_argument(
        "--resume",
        metavar="CKPT|auto",
        default=None,
        help="continue exactly from a checkpoint; 'auto' = OUTPUT/checkpoints/last.ckpt if any",
    )
    p.add_argument(
        "--output", type=Path, default=None, help="run folder (default runs/<config name>)"
    )
    p.add_argument("--max-steps", type=int, default=None, help="override trainer.max_steps")
    p.add_argument("--devices", type=_devices, default=None, help="devices per node (N or auto)")
    p.add_argument("--accelerator", choices=("cpu", "gpu", "auto"), default=None)
    p.add_argument(
        "--vgg-weights",
        type=Path,
        default=None,
        metavar="PATH",
        help="VGG-16 weights (torchvision's vgg16 state dict, .pth or .safetensors) for every "
        "configured loss that takes them (losses.NAME.vgg_weights)",
    )
    options.add_set_argument(
        p, "override config values (YAML syntax), e.g. --set data.root=DIR trainer.max_steps=5"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m aioir.cli.train``: the ``train`` command on its own."""
    from aioir.errors import AioirError

    parser = argparse.ArgumentParser(prog="aioir")
    sub = parser.add_subparsers(dest="command")
    register(sub)
    args = parser.parse_args(["train", *(sys.argv[1:] if argv is None else argv)])
    try:
        return int(args.handler(args) or 0)
    except AioirError as exc:
        print(f"aioir: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
