"""``aioir embed``, ``aioir viz clusters`` (a model's degradation embeddings and their clusters)
and ``aioir viz training`` (the curves of a training run).

Exit status: 0 written, 1 failed (bad model, images or file), 2 usage error.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from aioir.cli import _options as options
from aioir.cli._types import positive_int

_EMBED = """\
Compute the degradation embeddings (pooled degradation map d, contrastive feature f, bottom
codebook usage) of a labelled image set with a model that has a degradation embedding
(e.g. UDAIR's codebook module) and write them to FILE.npz.
IMAGES is synthetic:DIR[:TASKS] (seeded crops of clean photos, a corpus uses its test split),
another benchmark spec, or a folder with one sub-folder of images per task. An existing
FILE.npz is refused unless --overwrite is given."""

_CLUSTERS = """\
Plot the degradation clusters: t-SNE of the pooled embedding coloured by task, the codebook
usage per task, and the k-NN accuracy (cross-validated, folds grouped by photo) and silhouette
of the tasks. Reads --embeddings FILE.npz, or computes them from --model and --images. An
existing FIG.png is refused unless --overwrite is given."""


_TRAINING = """\
Plot the curves of an `aioir train` run folder: the training loss terms, each task's validation
PSNR (dotted: its degraded input) and each task's PSNR gain over its input with val/min_gain,
the worst task, in bold. Reads RUN/logs/version_*/metrics.csv (the newest; trainer.logger=csv,
readable while the run trains) or RUN/training.json (written when the run ends)."""


def _crop(value: str) -> int | None:
    return None if value in ("0", "none") else positive_int(value)


def _severity(value: str) -> str | float:
    try:
        return float(value)
    except ValueError:
        return value


def _add_source(p: argparse.ArgumentParser, required: bool) -> None:
    options.add_model_argument(
        p, "model with a degradation embedding", metavar="PATH", required=required, default=None
    )
    p.add_argument("--images", required=required, metavar="SOURCE", help="labelled images")
    p.add_argument("--crop", type=_crop, default=128, help="crop side, 0 = whole (default 128)")
    p.add_argument("--crops-per-image", type=positive_int, default=4, help="synthetic crops (4)")
    p.add_argument(
        "--severity", type=_severity, default="random", help="synthetic severity (random)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic crops")


def _compute(args: argparse.Namespace):
    from aioir.restore.resolve import resolve_model
    from aioir.viz.clusters import embeddings_from_source

    model = resolve_model(args.model)
    return embeddings_from_source(
        model,
        args.images,
        crop=args.crop,
        crops_per_image=args.crops_per_image,
        severity=args.severity,
        seed=args.seed,
    )


def _add_figure_output(p: argparse.ArgumentParser, title_help: str) -> None:
    """``-o FIG.png``, ``--title`` and ``--overwrite``: the output options of every figure."""
    options.add_output_argument(p, "FIG.png", required=True)
    p.add_argument("--title", default=None, help=title_help)
    options.add_overwrite_argument(p, "replace an existing FIG.png")


def _embed(args: argparse.Namespace) -> int:
    from aioir.viz.clusters import embeddings_path

    options.refuse_existing(embeddings_path(args.output), args.overwrite)
    emb = _compute(args)
    path = emb.save(args.output, overwrite=args.overwrite)
    options.say("embed", f"{len(emb)} embeddings ({', '.join(emb.task_names)}) -> {path}")
    return 0


def _clusters(args: argparse.Namespace) -> int:
    from aioir.errors import ConfigError
    from aioir.viz.clusters import Embeddings, plot_clusters

    options.refuse_existing(args.output, args.overwrite)
    if args.embeddings is not None:
        if args.model is not None or args.images is not None:
            raise ConfigError("give either --embeddings or --model with --images, not both")
        emb = Embeddings.load(args.embeddings)
    elif args.model is not None and args.images is not None:
        emb = _compute(args)
    else:
        raise ConfigError("give --embeddings FILE.npz, or --model and --images")
    scores = plot_clusters(emb, args.output, title=args.title, seed=args.seed,
                           overwrite=args.overwrite)  # fmt: skip
    print(json.dumps(scores, indent=1))
    options.say("viz clusters", f"wrote {args.output}")
    return 0


def _training(args: argparse.Namespace) -> int:
    from aioir.viz.training import plot_training, read_training_log

    options.refuse_existing(args.output, args.overwrite)
    log = read_training_log(args.run)
    path = plot_training(log, args.output, title=args.title or str(args.run),
                         overwrite=args.overwrite)  # fmt: skip
    worst = log.series("val/min_gain")
    last = f"; last val/min_gain {worst[-1][1]:+.2f} dB at step {worst[-1][0]}" if worst else ""
    options.say("viz training", f"{len(log.val)} validations from {log.source}{last}; wrote {path}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``embed`` command and the ``viz`` group (``viz clusters``)."""
    p = options.add_command(
        sub, "embed", _embed, "degradation embeddings of a labelled image set", _EMBED
    )
    _add_source(p, required=True)
    options.add_output_argument(p, "FILE.npz", required=True)
    options.add_overwrite_argument(p, "replace an existing FILE.npz")

    vsub = options.add_command_group(
        sub,
        "viz",
        "figures (degradation clusters, training curves)",
        dest="viz_command",
        metavar="FIGURE",
    )
    c = options.add_command(
        vsub,
        "clusters",
        _clusters,
        "t-SNE of degradation embeddings, codebook usage, k-NN accuracy",
        _CLUSTERS,
    )
    c.add_argument("--embeddings", type=Path, default=None, metavar="FILE.npz")
    _add_source(c, required=False)
    _add_figure_output(c, "figure title")
    t = options.add_command(
        vsub,
        "training",
        _training,
        "loss, validation PSNR and gain over the input of a training run",
        _TRAINING,
    )
    t.add_argument("run", type=Path, metavar="RUN", help="an `aioir train` output folder")
    _add_figure_output(t, "figure title (default: the folder)")
