"""Listing commands: ``aioir models``, ``aioir degradations``, ``aioir protocols``."""

from __future__ import annotations

import argparse

from aioir.cli import _options as options


def _default_row() -> str | None:
    """The shipped default model's row of ``aioir models`` (``None`` when none is shipped)."""
    from aioir.models import DEFAULT_MODEL, load_model, model_description, unwrap
    from aioir.models.checkpoints import shipped_weights

    if shipped_weights(DEFAULT_MODEL) is None:
        return None
    model = load_model(DEFAULT_MODEL)
    config = unwrap(model).aioir_config
    params = sum(p.numel() for p in model.parameters())
    what = model_description(model) or type(model).__name__
    return (
        f"{DEFAULT_MODEL:24s} {config['architecture']:12s} {config['preset']:8s} "
        f"{params:>12,}  the shipped default model, used without --model: {what}"
    )


def _models(args: argparse.Namespace) -> int:
    from aioir.models import list_models

    records = list_models()
    print(f"{'name':24s} {'architecture':12s} {'preset':8s} {'params':>12s}  description")
    default = _default_row()
    if default is not None:
        print(default)
    for rec in records:
        params = f"{rec.parameters:,}" if rec.parameters is not None else "?"
        print(
            f"{rec.name:24s} {rec.architecture:12s} {rec.preset:8s} {params:>12s}  "
            f"{rec.description}"
        )
    return 0


def _degradations(args: argparse.Namespace) -> int:
    from aioir.degradations import available_degradations, degradation_class

    for name in available_degradations(args.task):
        cls = degradation_class(name)
        doc = (cls.__doc__ or "").strip().splitlines()
        print(f"{name:16s} task={cls.task:11s} {doc[0] if doc else ''}")
    return 0


def _protocols(args: argparse.Namespace) -> int:
    from aioir.metrics import PROTOCOLS

    for protocol in PROTOCOLS.values():
        print(protocol.header())
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the listing commands."""
    options.add_command(sub, "models", _models, "list registered models and presets")
    degr = options.add_command(
        sub, "degradations", _degradations, "list the synthetic degradations"
    )
    degr.add_argument("--task", default=None, help="only this task's degradations")
    options.add_command(sub, "protocols", _protocols, "list the named metric protocols")
