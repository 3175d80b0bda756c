"""NIQE: the shipped corpus model ranks distortions of a real photo, fitting and I/O work."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage

from aioir.evaluate.niqe import (
    NIQEModel,
    default_niqe_model,
    fit_niqe_model,
    niqe,
    niqe_features,
)

from .conftest import sample_photo


@pytest.fixture(scope="module")
def bridge() -> np.ndarray:
    """A real photo from the corpus *test* split (not used to fit the shipped model)."""
    return sample_photo("bridge.jpg").astype(np.float64)


def test_shipped_model_was_fitted_on_the_corpus_train_split(bridge):
    model = default_niqe_model()
    info = json.loads(model.info)
    assert info["corpus_split"] == "train" and info["photos"] >= 10
    assert "bridge" not in " ".join(info["files"])
    assert model.mean.shape == (36,) and model.cov.shape == (36, 36)
    assert model.n_patches > 100 and model.patch_size == 96


def test_niqe_increases_with_noise(bridge):
    rng = np.random.default_rng(0)
    scores = [
        niqe(np.clip(bridge + rng.normal(0, s / 255, bridge.shape), 0, 1)) for s in (0, 10, 30)
    ]
    assert scores[0] < scores[1] < scores[2]


def test_niqe_increases_with_blur(bridge):
    scores = [
        niqe(ndimage.gaussian_filter(bridge, (s, s, 0))) if s else niqe(bridge) for s in (0, 1.5, 3)
    ]
    assert scores[0] < scores[1] < scores[2]


def test_features_and_fit_roundtrip(tmp_path, bridge):
    feats, sharp = niqe_features(bridge, 96)
    assert feats.shape == ((288 // 96) * (512 // 96), 36) and sharp.shape == (feats.shape[0],)
    crops = [bridge[i : i + 64, j : j + 64] for i in (0, 100, 200) for j in (0, 200, 400)]
    model = fit_niqe_model(crops, patch_size=16, info="test")
    back = NIQEModel.load(model.save(tmp_path / "m.npz"))
    assert np.array_equal(back.mean, model.mean) and back.patch_size == 16
    assert back.info == "test" and back.n_patches == model.n_patches
    assert niqe(bridge[:64, :64], back) == pytest.approx(niqe(bridge[:64, :64], model))


def test_too_small_images_are_refused():
    with pytest.raises(ValueError, match="at least 96×96"):
        niqe(np.zeros((50, 50, 3)))
    with pytest.raises(ValueError, match="even number"):
        niqe_features(np.zeros((50, 50, 3)), 15)
