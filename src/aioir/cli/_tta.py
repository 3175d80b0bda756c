"""The test-time adaptation options shared by ``aioir restore`` and ``aioir evaluate``."""

from __future__ import annotations

import argparse
from typing import Any


def add_tta_arguments(parser: argparse.ArgumentParser) -> None:
    """``--tta``, ``--tta-mode`` and ``--tta-task`` (the latter two imply ``--tta``)."""
    parser.add_argument(
        "--tta", action="store_true", help="test-time adaptation (models that support it)"
    )
    parser.add_argument(
        "--tta-mode",
        choices=("default", "faithful"),
        default=None,
        help="UDAIR: 'default' (blind, residual adapters, stopping rule) or 'faithful' "
        "(the authors' procedure; needs --tta-task)",
    )
    parser.add_argument(
        "--tta-task",
        default=None,
        metavar="TASK",
        help="reference cluster by task name instead of the blind choice (e.g. noise, haze)",
    )


def tta_from_args(args: argparse.Namespace) -> bool | dict[str, Any]:
    """What ``Restorer(tta=...)`` takes: ``False``, ``True`` or the adapter's options."""
    options = {
        key: value
        for key, value in (("mode", args.tta_mode), ("task", args.tta_task))
        if value is not None
    }
    return options or bool(args.tta)
