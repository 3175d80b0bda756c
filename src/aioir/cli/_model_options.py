"""A model's own restoration options on ``aioir restore``, declared by the method packages.

A method's command module (:func:`aioir.plugins.command_modules`) may define
``add_restore_arguments(group)`` (its flags, added to an argument group of ``aioir restore``)
and ``restore_options(args) -> dict`` (what those flags ask of the model; passed as
``Restorer(model_options=...)`` to the model's ``set_inference_options``). ``--task`` (the
images' degradation, when the user knows it) is every model's: it is ``task`` in the options.
``aioir evaluate`` takes the same flags (an option value ``case`` there means each benchmark
case's task, :data:`aioir.evaluate.methods.CASE_TASK`). ``--explain`` (restore only) prints, for
models that report them, the per-image decisions of the network after each image.
"""

from __future__ import annotations

import argparse
from typing import Any

from aioir.plugins import command_modules


def add_model_option_arguments(parser: argparse.ArgumentParser, *, explain: bool = True) -> None:
    """The installed methods' restore flags (one argument group) and, with ``explain``,
    ``--explain`` (``aioir restore``; ``aioir evaluate`` takes the flags without it)."""
    group = parser.add_argument_group("model options (for the models that take them)")
    group.add_argument(
        "--task",
        default=None,
        metavar="TASK",
        help="what is wrong with the images, when you know it (noise, rain, haze, lowlight, "
        "blur, underwater; haze+rain for both): the default model restores them as that "
        "degradation instead of guessing (e.g. a dark photo it took for a dim scene); ABAIR "
        "models use that task's adapter (--adapter-mode oracle); aioir evaluate: 'case' = "
        "each case's own task",
    )
    for module in command_modules():
        hook = getattr(module, "add_restore_arguments", None)
        if hook is not None:
            hook(group)
    if not explain:
        return
    group.add_argument(
        "--explain",
        action="store_true",
        help="after each image, print the model's per-image decisions on stdout as "
        "'INPUT: ...' (e.g. a degradation estimate; models that report them)",
    )


def model_options_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The model options the installed methods read from ``args`` (empty when none is set)."""
    options: dict[str, Any] = {} if args.task is None else {"task": args.task}
    for module in command_modules():
        read = getattr(module, "restore_options", None)
        if read is not None:
            options.update(read(args))
    return options
