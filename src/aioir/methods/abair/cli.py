"""ABAIR's command line: its ``aioir restore`` options (no command of its own).

Registered through the ``aioir.commands`` entry point (light imports). Adding a degradation is
two ``aioir train`` runs (``configs/abair/add-jpeg-*.yaml``).
``aioir restore --model M --adapter-mode soft|onehot|oracle|off [--task haze]`` chooses how the
adapters are used (``--task`` alone means the oracle mode); ``--explain`` prints the estimator's
probabilities per image. ``aioir evaluate`` takes the same flags (``--task case``: each case's
own task, the oracle per column).
"""

from __future__ import annotations

import argparse
from typing import Any

ADAPTER_MODE_HELP = {
    "soft": "blend the task adapters with the estimator's probabilities (default)",
    "onehot": "use the adapter of the most probable task",
    "oracle": "use the adapter of the task given by --task",
    "off": "no adapter (the pre-trained backbone)",
}


def add_restore_arguments(group: Any) -> None:
    """``--adapter-mode`` on ``aioir restore`` (models with task adapters; ``--task``, every
    model's, names the adapter for the oracle mode and implies it)."""
    group.add_argument(
        "--adapter-mode",
        choices=tuple(ADAPTER_MODE_HELP),
        default=None,
        help="task adapters (ABAIR models): "
        + "; ".join(f"'{m}': {t}" for m, t in ADAPTER_MODE_HELP.items()),
    )


def restore_options(args: argparse.Namespace) -> dict[str, Any]:
    """``adapter_mode`` for the model, when given."""
    return {} if args.adapter_mode is None else {"adapter_mode": args.adapter_mode}


def register(sub: argparse._SubParsersAction) -> None:
    """ABAIR adds no command: its training phases are ``aioir train`` configs and its restore
    options come through :func:`add_restore_arguments`."""
