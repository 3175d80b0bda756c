"""``aioir embed`` and ``aioir viz clusters`` end to end with udair-tiny."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from aioir import cli
from aioir.io import write_image
from aioir.models import load_model, save_pretrained
from aioir.viz.clusters import Embeddings


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("m") / "udair-tiny.safetensors"
    save_pretrained(load_model("udair-tiny"), path)
    return path


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for i in range(5):
        write_image(folder / f"p{i}.png", rng.random((48, 56, 3)).astype(np.float32))
    return folder


def test_embed_synthetic_then_plot(model_path, photos, tmp_path, capsys):
    npz = tmp_path / "e.npz"
    argv = ["embed", "--model", str(model_path), "--images", f"synthetic:{photos}:noise,haze",
            "--crop", "32", "--crops-per-image", "2", "-o", str(npz)]  # fmt: skip
    assert cli.main(argv) == 0, capsys.readouterr().err
    emb = Embeddings.load(npz)
    assert len(emb) == 20 and emb.task_names == ["noise", "haze"]
    assert sorted(set(n.split("#")[0] for n in emb.names)) == [f"p{i}.png" for i in range(5)]
    fig = tmp_path / "fig.png"
    assert cli.main(["viz", "clusters", "--embeddings", str(npz), "-o", str(fig)]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert fig.stat().st_size > 10_000
    assert 0.0 <= scores["knn_accuracy"] <= 1.0 and -1.0 <= scores["silhouette"] <= 1.0


def test_clusters_from_a_task_folder(model_path, tmp_path, capsys):
    rng = np.random.default_rng(1)
    for sub in ("denoising/images", "low-light_lime/images"):
        for i in range(5):
            write_image(
                tmp_path / "set" / sub / f"{i}.png", rng.random((40, 40, 3)).astype(np.float32)
            )
    fig = tmp_path / "f.png"
    code = cli.main(["viz", "clusters", "--model", str(model_path), "--images",
                     str(tmp_path / "set"), "--crop", "32", "-o", str(fig)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out)["tasks"] == 2
    capsys.readouterr()
    assert cli.main(["viz", "clusters", "-o", str(tmp_path / "new.png")]) == 1  # nothing to plot
    assert "--embeddings" in capsys.readouterr().err


def test_existing_outputs_are_refused_unless_overwrite(model_path, photos, tmp_path, capsys):
    npz, fig = tmp_path / "e.npz", tmp_path / "fig.png"
    npz.write_bytes(b"mine")
    fig.write_bytes(b"mine too")
    embed = ["embed", "--model", str(model_path), "--images", f"synthetic:{photos}:noise,haze",
             "--crop", "32", "--crops-per-image", "1", "-o", str(npz)]  # fmt: skip
    plot = ["viz", "clusters", "--embeddings", str(npz), "-o", str(fig)]
    for argv, path, content in ((embed, npz, b"mine"), (plot, fig, b"mine too")):
        capsys.readouterr()
        assert cli.main(argv) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and str(path) in err and "--overwrite" in err
        assert path.read_bytes() == content  # untouched
        assert cli.main([*argv, "--overwrite"]) == 0, capsys.readouterr().err
        assert path.read_bytes() != content
    assert len(Embeddings.load(npz)) == 10 and fig.stat().st_size > 10_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.npz", "fig.png"]  # no temp files
