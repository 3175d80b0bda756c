"""The ``aioir`` command line: a thin layer that parses arguments and calls the library.

Each command group lives in its own module of this package, exposing
``register(subparsers) -> None``; handlers import their implementation lazily, so
``aioir --help`` is instant and a broken optional dependency never breaks unrelated commands.
Errors the user can cause (:class:`aioir.errors.AioirError`) are printed as one line on stderr
with a non-zero exit status; ``--debug`` shows the traceback instead.

Exit status: 0 success, 1 the command failed (bad input, failed check), 2 usage error,
130 interrupted. Commands may return other documented codes (``restore``: 1 when some inputs
failed).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from aioir import __version__
from aioir.cli import (
    data,
    demo,
    evaluate,
    export,
    filter_bank,
    info,
    restore,
    serve,
    train,
    viz,
)
from aioir.cli._options import add_debug_everywhere
from aioir.errors import AioirError
from aioir.plugins import command_modules

__all__ = ["build_parser", "main"]

Handler = Callable[[argparse.Namespace], int]

#: The shared command-group modules, in the order their commands appear in ``aioir --help``.
COMMAND_MODULES = (restore, evaluate, train, filter_bank, viz, export, data, info, demo, serve)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (exposed for tests and documentation)."""
    parser = argparse.ArgumentParser(
        prog="aioir",
        description="All-in-One Image Restoration: restore, train, evaluate and adapt models.",
    )
    parser.add_argument("--version", action="version", version=f"aioir {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show full tracebacks instead of one-line errors"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(sub)
    for module in command_modules():  # the method packages' commands (aioir.plugins)
        module.register(sub)
    add_debug_everywhere(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``aioir`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        # no command, or a command group without its sub-command: show the relevant help
        getattr(args, "group_parser", parser).print_help(sys.stderr)
        return 2
    try:
        return int(handler(args) or 0)
    except AioirError as exc:
        if args.debug:
            raise
        print(f"aioir: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("aioir: interrupted", file=sys.stderr)
        return 130
