"""Options several commands share, defined once so their spelling and help agree."""

from __future__ import annotations

import argparse

__all__ = [
    "add_debug_everywhere",
    "add_device_argument",
    "add_self_ensemble_argument",
    "add_set_argument",
]


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    """``--device`` (``auto``: CUDA when available, else the CPU)."""
    parser.add_argument(
        "--device",
        default="auto",
        help="auto (CUDA if available), cpu, cuda or cuda:N (default auto)",
    )


def add_set_argument(parser: argparse.ArgumentParser, example: str) -> None:
    """``--set KEY.PATH=VALUE …``: config overrides in YAML syntax (``example`` shows some)."""
    parser.add_argument(
        "--set",
        action="extend",
        nargs="+",
        metavar="KEY.PATH=VALUE",
        help=f"override config values (YAML syntax), e.g. --set {example}",
    )


def add_self_ensemble_argument(parser: argparse.ArgumentParser) -> None:
    """``--self-ensemble [flips|all]`` (:mod:`aioir.restore.ensemble`); bare = ``flips``."""
    parser.add_argument(
        "--self-ensemble",
        nargs="?",
        const="flips",
        default=None,
        choices=("flips", "all"),
        metavar="flips|all",
        help="average each output over flips of its input (4× slower), or 'all' 8 "
        "flips/rotations (8×; turns rain streaks sideways)",
    )


def add_debug_everywhere(parser: argparse.ArgumentParser) -> None:
    """Accept ``--debug`` after every (sub-)command too, not only before it.

    The sub-command flags default to "absent", so they never reset a ``--debug`` given before the
    command; nested groups (``aioir data check``) are reached through their sub-parsers.
    """
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                if "--debug" not in child._option_string_actions:
                    child.add_argument(
                        "--debug",
                        action="store_true",
                        default=argparse.SUPPRESS,
                        help="show full tracebacks instead of one-line errors",
                    )
                add_debug_everywhere(child)
