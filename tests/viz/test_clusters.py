"""Cluster scores separate clear clusters from noise; embeddings round-trip; the figure is drawn."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aioir.errors import ConfigError, ImageWriteError
from aioir.models import load_model
from aioir.viz.clusters import Embeddings, cluster_scores, compute_embeddings, plot_clusters


def _blobs(separation: float, seed: int = 0) -> Embeddings:
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(3), 20)
    pooled = rng.normal(size=(60, 8)) + separation * np.eye(3, 8)[labels]
    names = [f"photo{i % 10}.png#{i}" for i in range(60)]
    codes = rng.integers(0, 5, size=(60, 16))
    return Embeddings(pooled.astype(np.float32), np.zeros((60, 0), np.float32), codes,
                      labels, ["noise", "haze", "rain"], names)  # fmt: skip


def test_scores_separate_clear_clusters_from_noise():
    clear, noise = cluster_scores(_blobs(10.0)), cluster_scores(_blobs(0.0))
    assert clear["knn_accuracy"] > 0.95 and noise["knn_accuracy"] < 0.7
    assert clear["silhouette"] > noise["silhouette"] + 0.2 and noise["silhouette"] < 0.1
    assert clear["cv"].endswith("grouped by photo")
    with pytest.raises(ConfigError, match="feature"):
        cluster_scores(_blobs(1.0), which="feature")


def test_round_trip_and_figure(tmp_path):
    emb = _blobs(5.0)
    back = Embeddings.load(emb.save(tmp_path / "e.npz"))
    assert np.array_equal(back.pooled, emb.pooled) and back.task_names == emb.task_names
    assert back.names == emb.names
    scores = plot_clusters(back, tmp_path / "fig.png", title="blobs")
    assert (tmp_path / "fig.png").stat().st_size > 10_000 and scores["n"] == 60
    with pytest.raises(ImageWriteError, match="exists"):
        plot_clusters(back, tmp_path / "fig.png")
    with pytest.raises(ImageWriteError, match="exists"):
        emb.save(tmp_path / "e.npz")
    moved = _blobs(1.0, seed=3)
    assert moved.save(tmp_path / "e.npz", overwrite=True) == tmp_path / "e.npz"
    assert np.array_equal(Embeddings.load(tmp_path / "e.npz").pooled, moved.pooled)
    assert emb.save(tmp_path / "plain") == tmp_path / "plain.npz"  # numpy's naming kept
    with pytest.raises(ConfigError):
        Embeddings.load(tmp_path / "missing.npz")


def test_compute_embeddings_with_a_tiny_udair():
    model = load_model("udair-tiny")
    g = torch.Generator().manual_seed(0)
    items = [(torch.rand(3, 32, 32, generator=g), t, f"p{i}.png") for i, t in
             enumerate(["noise", "haze", "noise"])]  # fmt: skip
    emb = compute_embeddings(model, items)
    assert emb.task_names == ["noise", "haze"] and emb.labels.tolist() == [0, 1, 0]
    assert emb.pooled.shape == (3, 32) and emb.feature.shape == (3, 32 * 256)
    assert emb.codes.shape == (3, 64) and (emb.codes.sum(1) == 64).all()  # 8×8 codes each
    assert not model.training and not model.adapters_enabled
