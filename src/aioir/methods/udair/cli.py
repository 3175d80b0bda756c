"""UDAIR's commands: ``aioir adapt`` (folder-level adaptation) and ``aioir bank`` (rebuild a
saved model's source bank). Registered through the ``aioir.commands`` entry point; handlers import
their implementation lazily.

Exit status: 0 written, 1 failed (bad model, config or data; output exists), 2 usage error.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from aioir.cli import _options as options
from aioir.cli._types import positive_float, positive_int

#: ``--tta-mode`` choices of ``aioir restore`` / ``aioir evaluate`` (aioir.cli._tta)
TTA_MODES: dict[str, str] = {
    "default": "UDAIR's blind default (residual adapters, stopping rule)",
    "faithful": "UDAIR's authors' procedure (needs --tta-task)",
}

_ADAPT_HELP = "adapt a UDAIR model to a folder of target-domain images"
_ADAPT_DESCRIPTION = """\
Adapt a UDAIR model once to a target domain (a folder of unlabelled images) and save the
adapted model to OUTPUT; it is used like any other: aioir restore --model OUTPUT ...

--method coral-adapters (default; ours): the test-time CORAL objective run over the folder —
  the three distribution adapters learn to bring the injected degradation embeddings' CORAL
  statistics to the source bank's (each image assigned its nearest source cluster blindly
  unless --task is given). It does not touch the codebook.
--method codebook (our reading of arXiv v1's domain adaptation): a projection before the
  DAM's bottom quantiser learns to align the target's pre-quantisation features, quantised
  embeddings and soft codeword usage with those of source-domain images (--source DIR, e.g.
  the training inputs), while a source reconstruction term keeps the model's restoration of
  the source images unchanged. Needs no source bank.

exit status: 0 written, 1 failed, 2 usage error"""


def _adapt(args: argparse.Namespace) -> int:
    from aioir.errors import ConfigError
    from aioir.methods.udair.adapt import AdaptConfig, adapt_to_folder, save_adapted
    from aioir.models import unwrap
    from aioir.models.artifacts import check_model_output
    from aioir.restore.api import resolve_device
    from aioir.restore.resolve import resolve_model

    out = Path(args.output)
    if args.method == "codebook":
        if args.source is None:
            return options.fail("adapt", "--method codebook needs --source DIR", 2)
        if args.task is not None:
            return options.fail("adapt", "--task applies to --method coral-adapters only", 2)
    elif args.source is not None:
        return options.fail("adapt", "--source applies to --method codebook only", 2)
    check_model_output(out, args.overwrite)  # before the (slow) adaptation
    device = resolve_device(args.device)
    model = resolve_model(args.model).to(device)
    network = unwrap(model)  # the network inside any wrapper (the default model's filter bank)
    if args.method == "codebook":
        return _align(args, model, network, out)
    if getattr(network, "source_bank", None) is None:
        raise ConfigError(
            f"{args.model}: not a UDAIR model saved with its source bank (bank.safetensors)"
        )
    config = AdaptConfig(
        task=args.task,
        steps=args.steps,
        lr=args.lr,
        batch_size=args.batch_size,
        crop=args.crop,
        seed=args.seed,
    )
    if args.task is not None:
        network.source_bank.task_index(args.task)  # ConfigError naming the known tasks

    def progress(step: int, loss: float) -> None:
        if not args.quiet and (step % 25 == 0 or step == args.steps):
            options.say("adapt", f"step {step}/{args.steps}  CORAL {loss:.4g}")

    result = adapt_to_folder(network, args.target, config, progress=progress)
    save_adapted(model.cpu(), out, result, overwrite=args.overwrite)
    if not args.quiet:
        s = result.summary()
        options.say(
            "adapt",
            f"{s['images']} images, clusters {s['clusters']}; probe CORAL "
            f"{s['initial_loss']:.4g} -> {s['final_loss']:.4g}; saved {out}",
        )
    return 0


def _align(args: argparse.Namespace, model: Any, network: Any, out: Path) -> int:
    from aioir.methods.udair.adapt import save_adapted
    from aioir.methods.udair.alignment import AlignConfig, align_codebook

    config = AlignConfig(
        steps=args.steps,
        lr=args.lr,
        batch_size=args.batch_size,
        crop=args.crop,
        seed=args.seed,
    )

    def progress(step: int, loss: float) -> None:
        if not args.quiet and (step % 25 == 0 or step == args.steps):
            options.say("adapt", f"step {step}/{args.steps}  loss {loss:.4g}")

    result = align_codebook(network, args.target, args.source, config, progress=progress)
    save_adapted(model.cpu(), out, result, overwrite=args.overwrite)
    if not args.quiet:
        b, a = result.before, result.after
        options.say(
            "adapt",
            f"{result.images} target / {result.source_images} source images; probe alignment "
            f"{b['align']:.4g} -> {a['align']:.4g} (usage KL {b['usage_kl']:.3g} -> "
            f"{a['usage_kl']:.3g}), source L1 change {a['source_l1']:.3g}; saved {out}",
        )
    return 0


def _register_adapt(sub: argparse._SubParsersAction) -> None:
    p = options.add_command(sub, "adapt", _adapt, _ADAPT_HELP, _ADAPT_DESCRIPTION)
    options.add_model_argument(p, "saved UDAIR model with bank", metavar="PATH", required=True)
    p.add_argument("--target", type=Path, required=True, metavar="DIR", help="target images")
    options.add_output_argument(p, "DIR", "output model", required=True)
    p.add_argument(
        "--method",
        choices=("coral-adapters", "codebook"),
        default="coral-adapters",
        help="coral-adapters: folder CORAL of the distribution adapters to the bank (default); "
        "codebook: codebook alignment with source images (arXiv v1, our reading)",
    )
    p.add_argument(
        "--source",
        type=Path,
        default=None,
        metavar="DIR",
        help="source-domain images (--method codebook)",
    )
    p.add_argument(
        "--task",
        default=None,
        help="coral-adapters: assign every image to this task (default: blind)",
    )
    p.add_argument("--steps", type=positive_int, default=200, help="optimiser steps (default 200)")
    p.add_argument("--lr", type=positive_float, default=1e-3, help="AdamW lr (default 1e-3)")
    p.add_argument("--batch-size", type=positive_int, default=8, help="crops per step (default 8)")
    p.add_argument(
        "--crop", type=positive_int, default=None, help="crop side (default: bank patch)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    options.add_device_argument(p)
    options.add_overwrite_argument(p, "replace an existing output")
    options.add_quiet_argument(p, "no progress")


_BANK_HELP = "(re)build a UDAIR model's source bank without retraining"
_BANK_DESCRIPTION = """\
(Re)build the source bank of a saved UDAIR model: one eval-mode pass over the fixed training
crops that `aioir train` uses for its final-pass bank (the data section of --config, seeded by
trainer.seed), giving per-task mean embedding maps and — unless --no-statistics — the per-task
row statistics (mean, covariance, within-image covariance) that blind test-time adaptation and
`aioir adapt` use. The config's model section is ignored; its tasks must match the model's.

Writes a new saved-model folder (--output: a copy of the model with the new bank), or replaces
the bank next to the model (--in-place --overwrite). Nothing is replaced without --overwrite;
files are written atomically.

examples:
  aioir bank --model runs/x/export --config configs/udair/default.yaml \\
      --set data.root=data/photos1024 --output models/x-newbank
  aioir bank --model runs/x/export --config CFG --in-place --overwrite --dtype float32

exit status: 0 written, 1 failed, 2 usage error"""


def _model_folder(spec: str) -> Path:
    from aioir.errors import ConfigError
    from aioir.models.checkpoints import CONFIG_NAME
    from aioir.restore.resolve import DEFAULT_MODEL, shipped_weights

    if spec == DEFAULT_MODEL:
        folder = shipped_weights(DEFAULT_MODEL)
        if folder is None or not folder.is_dir():
            raise ConfigError("no shipped default model folder in this installation")
        return folder
    folder = Path(spec)
    if not folder.exists():
        raise ConfigError(f"{folder}: no such model folder")
    if not folder.is_dir() or not (folder / CONFIG_NAME).is_file():
        raise ConfigError(
            f"{folder}: not a saved-model folder (model.safetensors + config.json); the bank "
            "lives beside the weights"
        )
    return folder


def _recorded_patch(model: Any) -> int | None:
    """The patch size the model's current bank (or its training record) was built with."""
    bank = getattr(model, "source_bank", None)
    if bank is not None and bank.metadata.get("patch_size"):
        return int(bank.metadata["patch_size"])
    training = (getattr(model, "aioir_metadata", {}) or {}).get("training") or {}
    for section in ("source_bank", "data"):
        value = (training.get(section) or {}).get("patch_size")
        if value:
            return int(value)
    return None


def _bank(args: argparse.Namespace) -> int:
    from aioir.engine.config import load_config
    from aioir.errors import ConfigError
    from aioir.methods.udair.bank_accumulation import build_source_bank, save_model_with_bank
    from aioir.models import load_model, unwrap
    from aioir.models.artifacts import check_model_output
    from aioir.restore.api import resolve_device

    if (args.output is None) == (not args.in_place):
        raise ConfigError("give either --output DIR or --in-place")
    if args.in_place and not args.overwrite:
        raise ConfigError("--in-place replaces the model's bank: pass --overwrite as well")
    folder = _model_folder(args.model)
    if args.output is not None:  # before the (slow) bank is built
        check_model_output(args.output, args.overwrite, source=folder)
    config = load_config(args.config, list(args.set or []))
    model = load_model(folder)
    network = unwrap(model)  # the network inside any wrapper (the default model's filter bank)
    if not hasattr(network, "forward_features"):
        raise ConfigError(f"{folder}: a {type(model).__name__} has no source bank (UDAIR only)")
    patch = args.patch_size or config.extras["source_bank"].patch_size or _recorded_patch(network)
    tasks = (getattr(model, "aioir_metadata", {}) or {}).get("task_names")
    device = resolve_device(args.device)
    start = time.perf_counter()
    bank = build_source_bank(
        network.to(device),
        config,
        items_per_task=args.items_per_task,
        patch_size=patch,
        batch_size=args.batch_size,
        statistics=not args.no_statistics,
        expected_tasks=tasks,
    )
    bank.metadata.update(
        {
            "built_by": "aioir bank",
            "config": str(args.config),
            "seed": int(config.trainer.seed),
        }
    )
    written = save_model_with_bank(
        model.cpu(),
        folder,
        bank,
        folder if args.in_place else args.output,
        dtype=args.dtype,
        overwrite=args.overwrite,
    )
    if not args.quiet:
        counts = bank.metadata["count"]
        options.say(
            "bank",
            f"{len(bank.task_names)} tasks × {counts[0]} crops of "
            f"{bank.metadata['patch_size']} px, statistics "
            f"{'yes' if bank.has_statistics else 'no'}, {args.dtype}, "
            f"{time.perf_counter() - start:.0f} s; wrote {written}",
        )
    return 0


def _register_bank(sub: argparse._SubParsersAction) -> None:
    p = options.add_command(sub, "bank", _bank, _BANK_HELP, _BANK_DESCRIPTION)
    options.add_model_argument(
        p, "saved UDAIR model folder, or 'default'", metavar="DIR", required=True
    )
    p.add_argument(
        "--config", type=Path, required=True, help="the training YAML config (data section)"
    )
    options.add_set_argument(p, "override config values, e.g. --set data.root=DIR trainer.seed=125")
    where = p.add_mutually_exclusive_group()
    options.add_output_argument(where, "DIR", "new model folder")
    where.add_argument("--in-place", action="store_true", help="replace the bank next to the model")
    options.add_overwrite_argument(p, "replace an existing output / bank")
    p.add_argument(
        "--items-per-task",
        type=positive_int,
        default=None,
        help="crops per task (default: the config's source_bank.items_per_task)",
    )
    p.add_argument(
        "--patch-size",
        type=positive_int,
        default=None,
        help="crop side (default: source_bank.patch_size, else the model's recorded bank "
        "patch, else data.patch_size)",
    )
    p.add_argument("--batch-size", type=positive_int, default=None, help="crops per forward pass")
    p.add_argument(
        "--dtype",
        choices=("float16", "float32"),
        default="float16",
        help="storage type of the bank tensors (default float16: half the size, "
        "TTA results unchanged — docs/decisions.md)",
    )
    p.add_argument(
        "--no-statistics",
        action="store_true",
        help="mean maps only (a format-1-like bank)",
    )
    options.add_device_argument(p)
    options.add_quiet_argument(p, "no summary line")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``adapt`` and ``bank`` commands."""
    _register_adapt(sub)
    _register_bank(sub)
