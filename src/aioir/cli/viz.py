"""``aioir embed``, ``aioir viz clusters`` (a model's degradation embeddings and their clusters)
and ``aioir viz training`` (the curves of a training run).

Exit status: 0 written, 1 failed (bad model, images or file), 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

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
    p.add_argument(
        "--model", required=required, metavar="PATH", help="model with a degradation embedding"
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
    p.add_argument("-o", "--output", type=Path, required=True, metavar="FIG.png")
    p.add_argument("--title", default=None, help=title_help)
    p.add_argument("--overwrite", action="store_true", help="replace an existing FIG.png")


def _refuse_existing(path: Path, overwrite: bool) -> None:
    """Fail before any work when ``path`` exists and ``--overwrite`` was not given."""
    from aioir.errors import ConfigError

    if path.exists() and not overwrite:
        raise ConfigError(f"{path}: exists; pass --overwrite to replace it")


def _embed(args: argparse.Namespace) -> int:
    from aioir.viz.clusters import embeddings_path

    _refuse_existing(embeddings_path(args.output), args.overwrite)
    emb = _compute(args)
    path = emb.save(args.output, overwrite=args.overwrite)
    print(f"aioir embed: {len(emb)} embeddings ({', '.join(emb.task_names)}) -> {path}",
          file=sys.stderr)  # fmt: skip
    return 0


def _clusters(args: argparse.Namespace) -> int:
    from aioir.errors import ConfigError
    from aioir.viz.clusters import Embeddings, plot_clusters

    _refuse_existing(args.output, args.overwrite)
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
    print(f"aioir viz clusters: wrote {args.output}", file=sys.stderr)
    return 0


def _training(args: argparse.Namespace) -> int:
    from aioir.viz.training import plot_training, read_training_log

    _refuse_existing(args.output, args.overwrite)
    log = read_training_log(args.run)
    path = plot_training(log, args.output, title=args.title or str(args.run),
                         overwrite=args.overwrite)  # fmt: skip
    worst = log.series("val/min_gain")
    last = f"; last val/min_gain {worst[-1][1]:+.2f} dB at step {worst[-1][0]}" if worst else ""
    print(f"aioir viz training: {len(log.val)} validations from {log.source}{last}; wrote {path}",
          file=sys.stderr)  # fmt: skip
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``embed`` command and the ``viz`` group (``viz clusters``)."""
    p = sub.add_parser(
        "embed",
        help="degradation embeddings of a labelled image set",
        description=_EMBED,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_source(p, required=True)
    p.add_argument("-o", "--output", type=Path, required=True, metavar="FILE.npz")
    p.add_argument("--overwrite", action="store_true", help="replace an existing FILE.npz")
    p.set_defaults(handler=_embed)

    viz = sub.add_parser("viz", help="figures (degradation clusters, training curves)")
    viz.set_defaults(group_parser=viz)
    vsub = viz.add_subparsers(dest="viz_command", metavar="FIGURE")
    c = vsub.add_parser(
        "clusters",
        help="t-SNE of degradation embeddings, codebook usage, k-NN accuracy",
        description=_CLUSTERS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    c.add_argument("--embeddings", type=Path, default=None, metavar="FILE.npz")
    _add_source(c, required=False)
    _add_figure_output(c, "figure title")
    c.set_defaults(handler=_clusters)
    t = vsub.add_parser(
        "training",
        help="loss, validation PSNR and gain over the input of a training run",
        description=_TRAINING,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    t.add_argument("run", type=Path, metavar="RUN", help="an `aioir train` output folder")
    _add_figure_output(t, "figure title (default: the folder)")
    t.set_defaults(handler=_training)
