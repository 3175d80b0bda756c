"""The test-time adaptation options shared by ``aioir restore`` and ``aioir evaluate``.

``--tta-mode`` offers the modes the installed methods declare: a method's command module
(:func:`aioir.plugins.command_modules`) may define ``TTA_MODES = {mode: description}``.
"""

from __future__ import annotations

import argparse
from typing import Any

from aioir.plugins import command_modules


def tta_modes() -> dict[str, str]:
    """The test-time adaptation modes of the installed methods: ``{mode: description}``."""
    modes: dict[str, list[str]] = {}
    for module in command_modules():
        for mode, text in getattr(module, "TTA_MODES", {}).items():
            modes.setdefault(mode, []).append(text)
    return {mode: "; ".join(texts) for mode, texts in modes.items()}


def add_tta_arguments(parser: argparse.ArgumentParser) -> None:
    """``--tta``, ``--tta-mode`` and ``--tta-task`` (the latter two imply ``--tta``)."""
    parser.add_argument(
        "--tta", action="store_true", help="test-time adaptation (models that support it)"
    )
    modes = tta_modes()
    parser.add_argument(
        "--tta-mode",
        choices=tuple(modes),
        default=None,
        help="; ".join(f"'{mode}': {text}" for mode, text in modes.items()),
    )
    parser.add_argument(
        "--tta-task",
        default=None,
        metavar="TASK",
        help="reference cluster by task name instead of the blind choice (e.g. noise, haze; "
        "the UDAIR authors' names such as dehazing, low-light are accepted)",
    )


def tta_from_args(args: argparse.Namespace) -> bool | dict[str, Any]:
    """What ``Restorer(tta=...)`` takes: ``False``, ``True`` or the adapter's options."""
    options = {
        key: value
        for key, value in (("mode", args.tta_mode), ("task", args.tta_task))
        if value is not None
    }
    return options or bool(args.tta)
