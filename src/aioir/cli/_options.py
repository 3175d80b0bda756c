"""What several commands share, defined once so their options, help and messages agree.

Parsers: :func:`add_command` and :func:`add_command_group` (sub-commands), the options of more
than one command (``--model``, ``--checkpoint``/``--allow-untrained``, ``-o/--output``,
``--overwrite``, ``-q/--quiet``, ``--no-progress``, ``--set``, ``--device``,
``--self-ensemble``) and ``--debug`` after every command. Handlers: :func:`refuse_existing`
(before any work), :func:`restoration_keywords` (restore and evaluate alike) and the one-line
messages on stderr, :func:`say` and :func:`fail`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aioir.cli._tta import tta_from_args

__all__ = [
    "add_checkpoint_arguments",
    "add_command",
    "add_command_group",
    "add_debug_everywhere",
    "add_device_argument",
    "add_follow_hint_argument",
    "add_model_argument",
    "add_no_progress_argument",
    "add_output_argument",
    "add_overwrite_argument",
    "add_quiet_argument",
    "add_self_ensemble_argument",
    "add_set_argument",
    "add_tile_arguments",
    "fail",
    "refuse_existing",
    "restoration_keywords",
    "say",
]

_DEFAULT_MODEL_HELP = (
    "'default' (the shipped default model, used when --model is not given), a registered "
    "model name (see `aioir models`; needs --checkpoint) or a saved-model path"
)


# ------------------------------------------------------------------------------ parsers
def add_command(
    sub: argparse._SubParsersAction,
    name: str,
    handler: Callable[[argparse.Namespace], int],
    help: str,
    description: str | None = None,
) -> argparse.ArgumentParser:
    """The sub-command ``name``, run by ``handler``. A description with line breaks keeps them
    (the multi-paragraph ones that end with an exit-status line); one without is wrapped."""
    raw = description is not None and "\n" in description
    options = {"formatter_class": argparse.RawDescriptionHelpFormatter} if raw else {}
    parser = sub.add_parser(name, help=help, description=description, **options)
    parser.set_defaults(handler=handler)
    return parser


def add_command_group(
    sub: argparse._SubParsersAction, name: str, help: str, *, dest: str, metavar: str
) -> argparse._SubParsersAction:
    """A command group (``aioir data …``): its sub-commands' action; the group alone shows its
    help (``group_parser``)."""
    group = sub.add_parser(name, help=help)
    group.set_defaults(group_parser=group)
    return group.add_subparsers(dest=dest, metavar=metavar)


def add_model_argument(
    parser: argparse.ArgumentParser,
    help: str = _DEFAULT_MODEL_HELP,
    *,
    metavar: str | None = "NAME_OR_PATH",
    required: bool = False,
    default: str | None = "default",
) -> None:
    """``--model`` (``default``, the shipped default model, unless ``required``)."""
    parser.add_argument(
        "--model",
        required=required,
        default=None if required else default,
        metavar=metavar,
        help=help,
    )


def add_checkpoint_argument(parser: argparse.ArgumentParser) -> None:
    """``--checkpoint``: the weights a registered model name is loaded with."""
    parser.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="weights for a model name (a training checkpoint gives its EMA weights)",
    )


def add_checkpoint_arguments(parser: argparse.ArgumentParser) -> None:
    """``--checkpoint`` and ``--allow-untrained``: what a registered model name restores with."""
    add_checkpoint_argument(parser)
    add_bank_argument(parser)
    parser.add_argument(
        "--allow-untrained",
        action="store_true",
        help="allow a model name without weights (random weights; for tests only)",
    )


def add_bank_argument(parser: argparse.ArgumentParser) -> None:
    """``--bank FILE``: a source bank attached to the model (UDAIR's ``bank.safetensors`` or
    its authors' ``source_domain_distrib.pth``; :func:`model_files`)."""
    parser.add_argument(
        "--bank",
        type=Path,
        default=None,
        metavar="FILE",
        help="source bank for the model (UDAIR: bank.safetensors or the authors' "
        "source_domain_distrib.pth, e.g. beside --checkpoint); replaces a saved model's",
    )


def model_files(args: argparse.Namespace) -> dict[str, Path] | None:
    """The files ``--bank`` … name, as ``Restorer(artifacts=...)`` takes them."""
    bank = getattr(args, "bank", None)
    return None if bank is None else {"bank": bank}


def add_output_argument(
    parser: argparse._ActionsContainer,
    metavar: str,
    help: str | None = None,
    *,
    default: Path | None = None,
    required: bool = False,
) -> None:
    """``-o/--output`` (a path); ``parser`` may be a mutually exclusive group."""
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        required=required,
        default=default,
        metavar=metavar,
        help=help,
    )


def add_overwrite_argument(parser: argparse.ArgumentParser, help: str) -> None:
    """``--overwrite``: replace what the command would otherwise refuse to replace."""
    parser.add_argument("--overwrite", action="store_true", help=help)


def add_quiet_argument(parser: argparse.ArgumentParser, help: str) -> None:
    """``-q/--quiet``: no progress, no summary on stderr."""
    parser.add_argument("-q", "--quiet", action="store_true", help=help)


def add_no_progress_argument(parser: argparse.ArgumentParser) -> None:
    """``--no-progress``: no progress bar."""
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_set_argument(parser: argparse.ArgumentParser, help: str) -> None:
    """``--set KEY.PATH=VALUE …`` (repeatable): overrides of a YAML config's values."""
    parser.add_argument("--set", action="extend", nargs="+", metavar="KEY.PATH=VALUE", help=help)


def add_tile_arguments(parser: argparse.ArgumentParser) -> None:
    """``--tile N`` and ``--tile-overlap N`` (``aioir restore``, ``aioir serve``)."""
    from aioir.cli._types import non_negative_int

    parser.add_argument(
        "--tile",
        type=non_negative_int,
        default=None,
        metavar="N",
        help="restore in N×N tiles, N at least twice the overlap (0: never tile; default: one "
        "pass when the image fits half the free memory, else tiles that do)",
    )
    parser.add_argument(
        "--tile-overlap",
        type=non_negative_int,
        default=32,
        metavar="N",
        help="tile overlap (default 32)",
    )


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    """``--device`` (``auto``: CUDA when available, else the CPU)."""
    parser.add_argument(
        "--device",
        default="auto",
        help="auto (CUDA if available), cpu, cuda or cuda:N (default auto)",
    )


def add_self_ensemble_argument(parser: argparse.ArgumentParser) -> None:
    """``--self-ensemble [flips|mirror|all]`` (:mod:`aioir.nn.ensemble`); bare = the model's
    own mode (``True``: :func:`~aioir.nn.ensemble.preferred_mode`)."""
    parser.add_argument(
        "--self-ensemble",
        nargs="?",
        const=True,
        default=None,
        choices=("flips", "mirror", "all"),
        metavar="flips|mirror|all",
        help="average each output over flipped copies of its input: 'flips' (4× slower), "
        "'mirror' the input and its left–right mirror image (2×; up stays up), or 'all' 8 "
        "flips/rotations (8×; turns rain streaks sideways); bare: the model's own mode "
        "('mirror' for the default model, which reads hazy photos upright; else 'flips')",
    )


def add_follow_hint_argument(parser: argparse.ArgumentParser) -> None:
    """``--follow-hint`` (``Restorer(follow_hint=True)``)."""
    parser.add_argument(
        "--follow-hint",
        action="store_true",
        help="when the model reads a degradation in a photo but restores it cautiously (the "
        "hint it prints) and is sure of it, restore that photo again as the hinted task and "
        "keep that (a second restoration for those photos only); the hints it is less sure "
        "of are printed as before",
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


# ------------------------------------------------------------------------------ handlers
def refuse_existing(path: Path, overwrite: bool, *, empty_folder_ok: bool = False) -> None:
    """Fail before any work when ``path`` exists and ``--overwrite`` was not given (with
    ``empty_folder_ok``, an empty folder counts as free)."""
    from aioir.errors import ConfigError

    if overwrite or not path.exists():
        return
    if empty_folder_ok and path.is_dir() and not any(path.iterdir()):
        return
    raise ConfigError(f"{path}: exists; pass --overwrite to replace it")


def restoration_keywords(args: argparse.Namespace) -> dict[str, Any]:
    """What ``aioir restore`` and ``aioir evaluate`` pass alike to ``Restorer`` / ``load_method``:
    ``checkpoint``, ``device``, ``tile``, ``precision``, ``tta``, ``self_ensemble``,
    ``allow_untrained``, ``artifacts`` (``--bank``), ``follow_hint``."""
    return {
        "checkpoint": args.checkpoint,
        "device": args.device,
        "tile": args.tile,
        "precision": args.precision,
        "tta": tta_from_args(args),
        "self_ensemble": args.self_ensemble,
        "allow_untrained": args.allow_untrained,
        "artifacts": model_files(args),
        "follow_hint": args.follow_hint,
    }


def say(command: str, message: str) -> None:
    """``aioir COMMAND: MESSAGE`` on stderr (progress and summaries; stdout keeps the results)."""
    print(f"aioir {command}: {message}", file=sys.stderr)


def fail(command: str, message: str, status: int = 1) -> int:
    """Say ``aioir COMMAND: error: MESSAGE`` on stderr; returns the exit ``status``."""
    say(command, f"error: {message}")
    return status
