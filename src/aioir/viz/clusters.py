"""Degradation identification: a model's degradation embeddings, how well they separate, a figure.

Works with any :class:`~aioir.models.protocols.DegradationEmbedder`.

* :func:`compute_embeddings` — per labelled image: the pooled degradation map ``d`` (global
  average, ``4·dim`` values), the contrastive feature ``f`` (``d`` pooled to 16×16, flattened)
  and the bottom-codebook usage histogram;
* :func:`embeddings_from_source` — the labelled images of ``synthetic:DIR[:TASKS]`` (several
  seeded crops per photo), any other benchmark spec, or a folder with one sub-folder per task
  (``noise/``, UDAIR's ``denoising/images/``, ``low-light_lime/`` …);
* :func:`cluster_scores` — k-NN accuracy of the task from the embedding (cross-validated,
  folds grouped by photo when names allow) and the silhouette coefficient;
* :func:`plot_clusters` — t-SNE coloured by task + codebook usage per task, with the numbers.

:class:`Embeddings` round-trips through ``.npz`` (``aioir embed`` / ``aioir viz clusters``).
"""

from __future__ import annotations

import dataclasses
import io
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from aioir.data.layouts import UDAIR_FOLDER_TASKS
from aioir.errors import ConfigError, DatasetLayoutError
from aioir.io import write_bytes_atomically
from aioir.models.protocols import DegradationEmbedder
from aioir.models.wrappers import unwrap

__all__ = [
    "FOLDER_TASKS",
    "Embeddings",
    "cluster_scores",
    "compute_embeddings",
    "embeddings_from_source",
    "embeddings_path",
    "plot_clusters",
    "task_colors",
]

#: Folder names → task names (UDAIR's source and target folders; ours map to themselves).
FOLDER_TASKS: dict[str, str] = {**UDAIR_FOLDER_TASKS, "lowlight": "lowlight", "deblurring": "blur"}


def embeddings_path(path: str | os.PathLike[str]) -> Path:
    """Where :meth:`Embeddings.save` writes ``path``: ``.npz`` appended unless present."""
    p = Path(path)
    return p if p.suffix == ".npz" else p.with_name(p.name + ".npz")


@dataclasses.dataclass
class Embeddings:
    """Per-image degradation embeddings with their task labels.

    Attributes:
        pooled: N×C global-average-pooled degradation map ``d``.
        feature: N×D contrastive feature ``f`` (or an N×0 array when not kept).
        codes: N×K bottom-codebook usage counts.
        labels: N task ids into ``task_names``.
        task_names: the tasks.
        names: N image identifiers (``photo.png#crop``); the part before ``#`` groups folds.
    """

    pooled: np.ndarray
    feature: np.ndarray
    codes: np.ndarray
    labels: np.ndarray
    task_names: list[str]
    names: list[str]

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Write a compressed ``.npz`` atomically (``.npz`` is appended to other names, as numpy
        does); an existing file is replaced only with ``overwrite``. Returns the path written."""
        p = embeddings_path(path)
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            pooled=self.pooled,
            feature=self.feature,
            codes=self.codes,
            labels=self.labels,
            task_names=np.array(self.task_names),
            names=np.array(self.names),
        )
        write_bytes_atomically(p, buffer.getvalue(), overwrite=overwrite)
        return p

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Embeddings:
        """Read a file written by :meth:`save`."""
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"{p}: no such embeddings file")
        try:
            with np.load(p, allow_pickle=False) as z:
                return cls(
                    z["pooled"], z["feature"], z["codes"], z["labels"].astype(np.int64),
                    [str(t) for t in z["task_names"]], [str(n) for n in z["names"]],
                )  # fmt: skip
        except (KeyError, ValueError, OSError) as exc:
            raise ConfigError(f"{p}: not an aioir embeddings file ({exc})") from exc


@torch.no_grad()
def compute_embeddings(
    model: nn.Module,
    items: Iterable[tuple[Tensor, str, str]],
    task_names: Sequence[str] | None = None,
    keep_feature: bool = True,
) -> Embeddings:
    """Embeddings of ``(image 3×H×W, task, name)`` items with a model that has a degradation
    embedding (:class:`~aioir.models.protocols.DegradationEmbedder`; eval mode, no
    adaptation). ``task_names`` fixes the label order (default: order of first appearance)."""
    network = unwrap(model)
    if not isinstance(network, DegradationEmbedder):
        raise ConfigError(f"{type(network).__name__} has no degradation embedding")
    device = next(network.parameters()).device
    names_order = list(task_names or [])
    pooled, feats, codes, labels, names = [], [], [], [], []
    was_training = network.training
    network.eval()
    try:
        for image, task, name in items:
            if task not in names_order:
                if task_names is not None:
                    raise ConfigError(f"task {task!r} not in {list(task_names)}")
                names_order.append(task)
            out = network.degradation_embedding(image[None].float().to(device))
            pooled.append(out.embedding.mean(dim=(2, 3))[0].cpu().numpy())
            keep = keep_feature and out.feature is not None
            feats.append(out.feature[0].cpu().numpy() if keep else np.zeros(0))
            used = out.codes.flatten().cpu().numpy() if out.codes is not None else np.zeros(0, int)
            codes.append(np.bincount(used, minlength=out.codebook_size))
            labels.append(names_order.index(task))
            names.append(name)
    finally:
        network.train(was_training)
    if not labels:
        raise DatasetLayoutError("no labelled images to embed")
    return Embeddings(
        np.stack(pooled).astype(np.float32),
        np.stack(feats).astype(np.float32),
        np.stack(codes).astype(np.int64),
        np.array(labels, dtype=np.int64),
        names_order,
        names,
    )


def _folder_task(name: str) -> str:
    key = name.lower()
    if key in FOLDER_TASKS:
        return FOLDER_TASKS[key]
    prefix = key.split("_", 1)[0]
    return FOLDER_TASKS.get(prefix, key)


def _folder_items(folder: Path) -> list[tuple[Path, str]]:
    from aioir.io import list_images

    out = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        images = sub / "images" if (sub / "images").is_dir() else sub
        out += [(path, _folder_task(sub.name)) for path in list_images(images)]
    if not out:
        raise DatasetLayoutError(
            f"{folder}: expected one sub-folder of images per task (noise/, denoising/images/, …)"
        )
    return out


def _center_crop(x: Tensor, side: int | None) -> Tensor:
    if side is None:
        return x
    h, w = x.shape[-2:]
    if min(h, w) < side:
        return x
    top, left = (h - side) // 2, (w - side) // 2
    return x[..., top : top + side, left : left + side]


def embeddings_from_source(
    model: nn.Module,
    source: str | os.PathLike[str],
    *,
    crop: int | None = 128,
    crops_per_image: int = 4,
    severity: str | float = "random",
    seed: int = 0,
    task_names: Sequence[str] | None = None,
) -> Embeddings:
    """Embeddings of a labelled image set (see the module docstring for ``source``).

    ``synthetic:DIR[:TASKS]`` draws ``crops_per_image`` seeded crops of side ``crop`` per photo
    and task (a photo corpus uses its test split) at ``severity``; a folder's images are
    centre-cropped to ``crop`` (``None``: whole images); another benchmark spec uses its cases.
    """
    text = os.fspath(source)
    order = (
        list(task_names)
        if task_names is not None
        else (getattr(model, "aioir_metadata", None) or {}).get("task_names")
    )
    items: list[tuple[Tensor, str, str]] = []
    if text.startswith("synthetic:"):
        from aioir.data.synthetic import SyntheticDegradationDataset
        from aioir.evaluate.benchmarks import SyntheticBenchmark, get_benchmark

        bench = get_benchmark(text)
        assert isinstance(bench, SyntheticBenchmark)  # what a ``synthetic:`` spec gives
        paths = bench.images()
        tasks = list(bench.tasks)
        ds = SyntheticDegradationDataset(
            paths, tasks, patch_size=crop, severity=severity, seed=seed, deterministic=True,
            length=len(paths) * max(1, crops_per_image),
        )  # fmt: skip
        for i in range(len(ds)):
            it = ds[i]
            _, _, repeat = ds.locate(i)
            items.append((it["input"], it["task"], f"{it['name']}#{repeat}"))
        order = [t for t in (order or []) if t in tasks] + [
            t for t in tasks if t not in (order or [])
        ]
    elif Path(text).is_dir():
        from aioir.io import load_image

        for path, task in _folder_items(Path(text)):
            x = torch.from_numpy(load_image(path).rgb).permute(2, 0, 1)
            items.append((_center_crop(x, crop), task, f"{path.parent.name}/{path.name}"))
    else:
        from aioir.evaluate.benchmarks import get_benchmark

        bench = get_benchmark(text, crop=crop)
        for column in bench.columns(None):
            for i in range(len(column)):
                case = column[i]
                items.append((case.input, case.task or column.key, f"{case.name}"))
    if order is not None:
        order = list(order) + sorted({t for _, t, _ in items} - set(order))
        present = {t for _, t, _ in items}
        order = [t for t in order if t in present]
    return compute_embeddings(model, items, order)


def _groups(names: Sequence[str]) -> np.ndarray:
    keys = [n.split("#", 1)[0].rsplit("/", 1)[-1] for n in names]
    return np.unique(keys, return_inverse=True)[1]


def cluster_scores(
    emb: Embeddings, k: int = 5, folds: int = 5, which: str = "pooled", seed: int = 0
) -> dict[str, Any]:
    """How well the embedding separates the tasks.

    ``knn_accuracy``: k-NN (``k``, standardised features) accuracy of the task, cross-validated
    with folds grouped by photo (no photo in both train and test folds) when there are at least
    ``folds`` photos, else stratified; ``silhouette``: silhouette coefficient of the task labels
    (standardised, Euclidean); ``chance``: the majority-class rate.
    """
    from sklearn.metrics import silhouette_score
    from sklearn.model_selection import GroupKFold, StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = emb.pooled if which == "pooled" else emb.feature
    y = emb.labels
    if x.ndim != 2 or x.shape[1] == 0:
        raise ConfigError(f"embeddings have no {which!r} features")
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise ConfigError("need at least two tasks to score clusters")
    groups = _groups(emb.names)
    n_groups = len(np.unique(groups))
    if n_groups >= folds:
        cv: Any = GroupKFold(n_splits=folds)
        split = "grouped by photo"
    else:
        folds = max(2, min(folds, int(counts.min())))
        cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        split = "stratified"
    kk = max(1, min(k, len(y) - len(y) // folds - 1))
    clf = make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=kk))
    acc = cross_val_score(clf, x, y, cv=cv, groups=groups if n_groups >= folds else None)
    z = StandardScaler().fit_transform(x)
    return {
        "features": which,
        "n": len(y),
        "tasks": len(classes),
        "knn_k": kk,
        "knn_accuracy": float(acc.mean()),
        "knn_std": float(acc.std()),
        "cv": f"{folds}-fold, {split}",
        "silhouette": float(silhouette_score(z, y)),
        "chance": float(counts.max() / counts.sum()),
    }


def plot_clusters(
    emb: Embeddings,
    output: str | os.PathLike[str],
    *,
    title: str | None = None,
    seed: int = 0,
    perplexity: float | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write the figure (t-SNE of the pooled embedding + codebook usage; PNG, atomically, an
    existing file replaced only with ``overwrite``); returns the scores."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from sklearn.manifold import TSNE
    from sklearn.preprocessing import StandardScaler

    scores = cluster_scores(emb, seed=seed)
    z = StandardScaler().fit_transform(emb.pooled)
    perp = perplexity or float(max(2.0, min(30.0, (len(emb) - 1) / 3.0)))
    xy = TSNE(n_components=2, perplexity=perp, init="pca", random_state=seed).fit_transform(z)

    fig = Figure(figsize=(13, 5.2), layout="constrained")
    FigureCanvasAgg(fig)
    ax, hx = fig.subplots(1, 2, width_ratios=[1.0, 1.25])
    cmap = task_colors(len(emb.task_names))
    for t, name in enumerate(emb.task_names):
        sel = emb.labels == t
        ax.scatter(xy[sel, 0], xy[sel, 1], s=18, color=cmap[t], label=name, alpha=0.85)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(fontsize=8, markerscale=1.5, loc="best")
    ax.set_title(
        f"t-SNE of the pooled degradation embedding (n={len(emb)})\n"
        f"{scores['knn_k']}-NN accuracy {scores['knn_accuracy']:.2f} ± {scores['knn_std']:.2f} "
        f"(chance {scores['chance']:.2f}), silhouette {scores['silhouette']:.2f}\n"
        f"cross-validation: {scores['cv']}",
        fontsize=9,
    )
    usage = np.stack(
        [emb.codes[emb.labels == t].sum(0) for t in range(len(emb.task_names))]
    ).astype(np.float64)
    usage /= np.maximum(usage.sum(1, keepdims=True), 1.0)
    order = np.argsort(-usage.sum(0))
    used = int((usage.sum(0) > 0).sum())
    shown = order[: max(1, min(used, 64))]
    im = hx.imshow(usage[:, shown], aspect="auto", cmap="magma", interpolation="nearest")
    hx.set_yticks(range(len(emb.task_names)), emb.task_names, fontsize=8)
    hx.set_xlabel(f"bottom codeword (the {len(shown)} most used of {usage.shape[1]}; {used} used)")
    hx.set_title("Codebook usage per task (fraction of H/4 locations)", fontsize=9)
    fig.colorbar(im, ax=hx, fraction=0.04)
    if title:
        fig.suptitle(title, fontsize=10)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    write_bytes_atomically(Path(output), buffer.getvalue(), overwrite=overwrite)
    return scores


def task_colors(n: int) -> list[Any]:
    """``n`` distinct matplotlib colours, one per task (tab10, tab20 beyond ten): every aioir
    figure colours task ``i`` alike."""
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i) for i in range(n)]
