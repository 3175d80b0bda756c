"""``aioir export``: write a model as ONNX (dynamic batch/height/width) or TorchScript."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _export(args: argparse.Namespace) -> int:
    from aioir.errors import ConfigError
    from aioir.restore.export import export_model
    from aioir.restore.resolve import resolve_model

    if args.size < 1:
        print(f"aioir export: error: --size must be positive, not {args.size}", file=sys.stderr)
        return 2
    try:
        model = resolve_model(args.model, args.checkpoint, allow_untrained=args.allow_untrained)
    except ConfigError as exc:
        print(f"aioir export: error: {exc}", file=sys.stderr)
        return 2
    path = export_model(
        model,
        args.output,
        args.format,
        size=args.size,
        opset=args.opset,
        overwrite=args.overwrite,
    )
    print(path)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``export`` command."""
    p = sub.add_parser(
        "export",
        help="export a model to ONNX or TorchScript",
        description=(
            "Export a model; the graph takes B×3×H×W float32 in [0, 1] of any size (padding to "
            "the model's size multiple is part of the graph) and returns the same shape."
        ),
    )
    p.add_argument(
        "--model", required=True, metavar="NAME_OR_PATH", help="model name or saved-model path"
    )
    p.add_argument("--checkpoint", type=Path, default=None, help="weights for a model name")
    p.add_argument(
        "--allow-untrained",
        action="store_true",
        help="allow a model name without weights (random weights; for tests only)",
    )
    p.add_argument("--format", choices=("onnx", "torchscript"), required=True)
    p.add_argument("-o", "--output", type=Path, required=True, metavar="FILE")
    p.add_argument("--size", type=int, default=256, help="side of the tracing input (default 256)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing file")
    p.set_defaults(handler=_export)
