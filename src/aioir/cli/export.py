"""``aioir export``: write a model as ONNX (dynamic batch/height/width) or TorchScript."""

from __future__ import annotations

import argparse

from aioir.cli import _options as options

_HELP = "export a model to ONNX or TorchScript"
_DESCRIPTION = (
    "Export a model; the graph takes B×3×H×W float32 in [0, 1] of any size (padding to "
    "the model's size multiple is part of the graph) and returns the same shape."
)


def _export(args: argparse.Namespace) -> int:
    from aioir.errors import AioirError
    from aioir.restore.export import export_model
    from aioir.restore.resolve import resolve_model

    if args.size < 1:
        return options.fail("export", f"--size must be positive, not {args.size}", 2)
    try:
        model = resolve_model(
            args.model,
            args.checkpoint,
            allow_untrained=args.allow_untrained,
            artifacts=options.model_files(args),
        )
    except AioirError as exc:
        return options.fail("export", str(exc), 2)
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
    p = options.add_command(sub, "export", _export, _HELP, _DESCRIPTION)
    options.add_model_argument(p, "model name or saved-model path", required=True)
    options.add_checkpoint_arguments(p)
    p.add_argument("--format", choices=("onnx", "torchscript"), required=True)
    options.add_output_argument(p, "FILE", required=True)
    p.add_argument("--size", type=int, default=256, help="side of the tracing input (default 256)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    options.add_overwrite_argument(p, "replace an existing file")
