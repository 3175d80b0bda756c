"""UDAIR's claims measured at equal budget on presets that train here (issue 18, part 3).

Usage::

    python benchmarks/claims.py --photos data/photos1024 --preset tiny --steps 300 \\
        --seeds 0,1,2 --out benchmarks/claims.md --figures docs/claims

Every run trains from scratch on synthetic degradations (aioir's registered generators, random
severity) of the photo corpus's **train** split (or a folder's ``train/``), task-ordered batches of ``T × M`` crops (UDAIR's
sampler), AdamW, the same steps, data order and seed for every arm; it is scored on seeded crops
of the **test** split (a folder's ``val/``; never trained on).

1. *Cross-sample contrastive learning separates degradations*: ``udair-<preset>`` trained with
   ``L1 + 0.2·CSCL`` (normalised CSCL) and with the CSCL weight 0; k-NN task accuracy (k = 5,
   5 folds grouped by photo, :func:`aioir.viz.clusters.cluster_scores`) and silhouette of the
   pooled degradation embedding and of the contrastive feature; with ``--figures`` a t-SNE
   cluster figure per arm (first seed).
2. *The degradation module + CSCL improve restoration*: the CSCL arm of claim 1 against a
   Restormer whose width is chosen so its parameter count is the closest to the UDAIR's (same
   depth), same steps: PSNR per task (protocol ``clean``, RGB, per-image mean).
3. *Test-time adaptation on shifted targets*: measured by ``benchmarks/tta.py`` on the shipped
   model (none / faithful / blind default / folder CORAL adaptation / codebook alignment), not
   repeated here.

Each figure is the mean ± sample standard deviation over ``--seeds``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

DEFAULT_TASKS = ("noise", "rain", "haze", "lowlight", "blur", "underwater")


def photo_splits(root: Path) -> tuple[list[Path], list[Path]]:
    """(training, scoring) photos: a corpus's ``train`` and ``test`` splits, or a folder's
    ``train/`` and ``val/`` sub-folders."""
    from aioir.data.photos import SOURCES_FILE, clean_photo_splits, load_corpus

    if (root / SOURCES_FILE).is_file():
        corpus = load_corpus(root)
        return corpus.split("train"), corpus.split("test")
    return clean_photo_splits(root)


def _sets(paths: list[Path], tasks: list[str], crop: int, length: int, seed: int) -> list[Any]:
    """One deterministic synthetic dataset per task (items by index)."""
    from aioir.data.synthetic import SyntheticDegradationDataset

    return [
        SyntheticDegradationDataset(
            paths,
            [t],
            patch_size=crop,
            severity="random",
            seed=seed + 97 * k,
            deterministic=True,
            length=length,
        )
        for k, t in enumerate(tasks)
    ]


def _batch(sets: list[Any], step: int, per_task: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A task-ordered batch ``[t0 × M, t1 × M, …]`` (inputs, targets)."""
    xs, ys = [], []
    for ds in sets:
        for j in range(per_task):
            item = ds[(step * per_task + j) % len(ds)]
            xs.append(item["input"])
            ys.append(item["target"])
    return torch.stack(xs), torch.stack(ys)


#: parameters a UDAIR network holds but never uses in a restoration forward: the distribution
#: adapters (TTA only) and the VQ-VAE image decoder (kept for key parity)
UNUSED_PREFIXES = ("distrib_adapt", "dam.codebook.upsample_t", "dam.codebook.dec.",
                   "dam.codebook.out_conv")  # fmt: skip


def used_parameters(model: nn.Module) -> int:
    """Parameters that take part in a plain restoration forward."""
    return sum(p.numel() for k, p in model.named_parameters() if not k.startswith(UNUSED_PREFIXES))


def matched_restormer(target_parameters: int, preset: str) -> tuple[nn.Module, int]:
    """A Restormer of the preset's depth whose width gives the parameter count closest to
    ``target_parameters``: ``(model, dim)``."""
    from aioir.models import create_model

    name = "restormer" if preset == "paper" else f"restormer-{preset}"
    best: tuple[int, int] | None = None
    for dim in range(4, 65, 2):
        try:
            model = create_model(name, dim=dim)
        except (ValueError, RuntimeError, TypeError):
            continue
        gap = abs(sum(p.numel() for p in model.parameters()) - target_parameters)
        if best is None or gap < best[0]:
            best = (gap, dim)
    if best is None:
        raise SystemExit(f"no Restormer width fits preset {preset}")
    return create_model(name, dim=best[1]), best[1]


def train(
    model: nn.Module,
    sets: list[Any],
    *,
    steps: int,
    per_task: int,
    lr: float,
    cscl_weight: float | None,
    seed: int,
) -> list[float]:
    """Train in place; ``cscl_weight=None`` for a network without a degradation module."""
    from aioir.methods.udair.losses import cscl_loss

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    losses = []
    for step in range(steps):
        x, y = _batch(sets, step, per_task)
        if cscl_weight is None:
            loss = F.l1_loss(model(x), y)
        else:
            out = model.forward_features(x)
            loss = F.l1_loss(out.image, y)
            if cscl_weight > 0:
                c = cscl_loss(
                    out.feature, out.logit_scale, len(sets), per_task,
                    mode="normalized", generator=gen,
                )  # fmt: skip
                loss = loss + cscl_weight * c.loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    model.eval()
    return losses


@torch.no_grad()
def psnr_per_task(model: nn.Module, test: list[Any], tasks: list[str]) -> dict[str, float]:
    """Mean per-image RGB PSNR per task (clipped output)."""
    from aioir.metrics import psnr

    out: dict[str, float] = {}
    for task, ds in zip(tasks, test):
        values = []
        for i in range(len(ds)):
            item = ds[i]
            pred = model(item["input"][None]).clamp(0, 1)
            values.append(float(psnr(pred, item["target"][None])[0]))
        out[task] = sum(values) / len(values)
    return out


def embed(model: nn.Module, test: list[Any], tasks: list[str]) -> Any:
    """Degradation embeddings of the test crops (:class:`aioir.viz.clusters.Embeddings`)."""
    from aioir.viz.clusters import compute_embeddings

    items = []
    for task, ds in zip(tasks, test):
        for i in range(len(ds)):
            item = ds[i]
            items.append((item["input"], task, f"{item['name']}#{i}"))
    return compute_embeddings(model, items, tasks)


def run(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """All the runs; ``(markdown, raw results)``."""
    from aioir.models import create_model
    from aioir.viz.clusters import cluster_scores, plot_clusters

    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    tasks = [t for t in args.tasks.split(",") if t]
    train_paths, test_paths = photo_splits(args.photos)
    name = "udair" if args.preset == "paper" else f"udair-{args.preset}"
    raw: dict[str, Any] = {"cscl": [], "no_cscl": [], "restormer": [], "restormer_dim": None}
    for seed in [int(s) for s in args.seeds.split(",") if s.strip()]:
        data = _sets(train_paths, tasks, args.crop, args.steps * args.per_task, 1000 + seed)
        test = _sets(test_paths, tasks, args.crop, args.test_per_task, 5000)
        arms: dict[str, tuple[nn.Module, float | None]] = {}
        torch.manual_seed(seed)
        arms["cscl"] = (create_model(name), 0.2)
        torch.manual_seed(seed)
        arms["no_cscl"] = (create_model(name), 0.0)
        udair_params = used_parameters(arms["cscl"][0])
        if args.claim2:
            torch.manual_seed(seed)
            restormer, dim = matched_restormer(udair_params, args.preset)
            raw["restormer_dim"] = dim
            raw["restormer_params"] = sum(p.numel() for p in restormer.parameters())
            arms["restormer"] = (restormer, None)
        raw["udair_params"] = udair_params
        for arm, (model, weight) in arms.items():
            t0 = time.perf_counter()
            losses = train(
                model, data, steps=args.steps, per_task=args.per_task, lr=args.lr,
                cscl_weight=weight, seed=seed,
            )  # fmt: skip
            record: dict[str, Any] = {
                "seed": seed,
                "psnr": psnr_per_task(model, test, tasks),
                "final_loss": statistics.fmean(losses[-10:]),
                "seconds": time.perf_counter() - t0,
            }
            if weight is not None:
                emb = embed(model, test, tasks)
                record["pooled"] = cluster_scores(emb, which="pooled", seed=seed)
                record["feature"] = cluster_scores(emb, which="feature", seed=seed)
                if args.figures is not None and seed == int(args.seeds.split(",")[0]):
                    args.figures.mkdir(parents=True, exist_ok=True)
                    plot_clusters(
                        emb, args.figures / f"clusters-{arm}.png", overwrite=True,
                        title=f"{name}, {args.steps} steps, CSCL weight {weight}",
                    )  # fmt: skip
            raw[arm].append(record)
            print(f"seed {seed} {arm}: {json.dumps(_brief(record))}", file=sys.stderr)
    return _report(raw, tasks, args, name, time.perf_counter() - t_start), raw


def _brief(record: dict[str, Any]) -> dict[str, Any]:
    out = {"psnr": round(statistics.fmean(record["psnr"].values()), 3)}
    if "pooled" in record:
        out["knn_pooled"] = round(record["pooled"]["knn_accuracy"], 3)
        out["knn_feature"] = round(record["feature"]["knn_accuracy"], 3)
    return out


def _report(
    raw: dict[str, Any], tasks: list[str], args: argparse.Namespace, name: str, wall: float
) -> str:
    from aioir.evaluate.report import format_mean_sd as _ms

    n = len(raw["cscl"])
    lines = [
        f"{name}, {args.steps} steps of {len(tasks)}×{args.per_task} crops of {args.crop} px "
        f"(train split), lr {args.lr}; scored on {args.test_per_task} test-split crops per "
        f"task; mean ± sd over {n} seed(s) ({args.seeds})",
        "",
        "**Claim 1 — CSCL separates degradations** (k-NN task accuracy, 5 folds grouped by "
        "photo; silhouette; chance = 1/T):",
        "",
        "| arm | k-NN pooled d | k-NN feature f | silhouette pooled | mean PSNR |",
        "|---|---|---|---|---|",
    ]
    for arm, label in (("cscl", "L1 + 0.2·CSCL"), ("no_cscl", "L1 only (CSCL weight 0)")):
        recs = raw[arm]
        lines.append(
            f"| {label} | {_ms([r['pooled']['knn_accuracy'] for r in recs], 3)} | "
            f"{_ms([r['feature']['knn_accuracy'] for r in recs], 3)} | "
            f"{_ms([r['pooled']['silhouette'] for r in recs], 3)} | "
            f"{_ms([statistics.fmean(r['psnr'].values()) for r in recs])} |"
        )
    if raw["restormer"]:
        lines += [
            "",
            f"**Claim 2 — UDAIR vs a Restormer of equal parameters** ({name}: "
            f"{raw['udair_params']:,} used in a forward, adapters and the unused VQ image "
            f"decoder excluded; Restormer dim {raw['restormer_dim']}: "
            f"{raw['restormer_params']:,}), PSNR (dB) on the test crops:",
            "",
            "| model | " + " | ".join(tasks) + " | mean |",
            "|---|" + "---|" * (len(tasks) + 1),
        ]
        for arm, label in (
            ("cscl", f"{name} (L1 + 0.2·CSCL)"),
            ("no_cscl", f"{name} (CSCL weight 0)"),
            ("restormer", f"Restormer dim {raw['restormer_dim']}"),
        ):
            recs = raw[arm]
            cells = [_ms([r["psnr"][t] for r in recs]) for t in tasks]
            mean = _ms([statistics.fmean(r["psnr"].values()) for r in recs])
            lines.append(f"| {label} | " + " | ".join(cells) + f" | {mean} |")
    secs = {arm: statistics.fmean(r["seconds"] for r in raw[arm]) for arm in raw if
            isinstance(raw[arm], list) and raw[arm]}  # fmt: skip
    lines += [
        "",
        "train seconds per run: " + ", ".join(f"{k} {v:.0f}" for k, v in secs.items()),
        "",
        "command: python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        f"machine: {platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} thread(s); wall {wall:.0f} s",
    ]
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    """The command-line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--photos", type=Path, required=True, help="photo corpus folder")
    p.add_argument("--preset", default="tiny", help="UDAIR preset (tiny, small, paper)")
    p.add_argument("--tasks", default=",".join(DEFAULT_TASKS), help="comma-separated tasks")
    p.add_argument("--steps", type=int, default=300, help="training steps per run")
    p.add_argument("--per-task", type=int, default=2, help="crops per task in a batch (M)")
    p.add_argument("--crop", type=int, default=64, help="crop side")
    p.add_argument("--lr", type=float, default=5e-4, help="AdamW lr")
    p.add_argument("--test-per-task", type=int, default=24, help="test crops per task")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    p.add_argument("--no-claim2", dest="claim2", action="store_false", help="skip claim 2")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--figures", type=Path, default=None, help="write cluster figures here")
    p.add_argument("--out", type=Path, default=None, help="write the markdown here")
    p.add_argument("--json", type=Path, default=None, help="write the raw results here")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run; print the markdown (and write ``--out`` / ``--json``)."""
    args = build_parser().parse_args(argv)
    if args.steps < 1 or args.per_task < 2 or args.test_per_task < 5:
        raise SystemExit("--steps >= 1, --per-task >= 2 and --test-per-task >= 5 are needed")
    text, raw = run(args)
    print(text)
    if args.out is not None:
        args.out.write_text(text, encoding="utf-8")
    if args.json is not None:
        args.json.write_text(json.dumps(raw, indent=1, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
