"""Adaptive gamma as a module: the classical comparator's numbers, one exponent per image."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import aioir
from aioir.evaluate.classical import adaptive_gamma
from aioir.models import AdaptiveGamma, load_model


def _photo(shape: tuple[int, int], seed: int, level: float) -> np.ndarray:
    """A smooth random colour image of mean about ``level``."""
    rng = np.random.default_rng(seed)
    base = rng.random((shape[0] // 8 + 1, shape[1] // 8 + 1, 3))
    image = np.kron(base, np.ones((8, 8, 1)))[: shape[0], : shape[1]]
    return np.clip(image * 2 * level, 0.0, 1.0)


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1)[None]


def _reference_gamma(image: np.ndarray) -> np.ndarray:
    """The rule written plainly in NumPy (the test's reference)."""
    mean = np.clip((image @ np.array([0.299, 0.587, 0.114])).mean(), 1e-3, 1 - 1e-3)
    return np.clip(image ** (np.log(0.5) / np.log(mean)), 0.0, 1.0)


@pytest.mark.parametrize("level", [0.08, 0.3, 0.7])
def test_it_matches_a_plain_numpy_implementation(level: float) -> None:
    image = _photo((40, 56), seed=1, level=level)
    with torch.no_grad():
        out = load_model("adaptive-gamma")(_to_tensor(image))[0].permute(1, 2, 0).numpy()
    assert np.abs(out - _reference_gamma(image)).max() < 1e-7  # float64
    assert np.abs(adaptive_gamma(image) - out).max() < 1e-12  # the comparator runs the module
    luma = out @ np.array([0.299, 0.587, 0.114])
    assert abs(luma.mean() - 0.5) < 0.1  # the mean moves towards mid-grey, either way


def test_the_brighten_preset_never_darkens() -> None:
    brighten, both = load_model("adaptive-gamma-brighten"), load_model("adaptive-gamma")
    dark = _to_tensor(_photo((32, 32), seed=2, level=0.1))
    bright = _to_tensor(_photo((32, 32), seed=3, level=0.75))
    with torch.no_grad():
        assert torch.equal(brighten(dark), both(dark))  # a dark photo: the same exponent
        assert torch.equal(brighten(bright), bright)  # a bright one: left as it is
        assert both(bright).mean() < bright.mean() - 0.05  # where the classical rule darkens


def test_every_image_of_a_batch_gets_its_own_exponent() -> None:
    a = _to_tensor(_photo((24, 24), seed=4, level=0.1)).float()
    b = _to_tensor(_photo((24, 24), seed=5, level=0.4)).float()
    model = AdaptiveGamma()
    with torch.no_grad():
        both = model(torch.cat([a, b]))
        assert torch.allclose(both[:1], model(a), atol=1e-6)
        assert torch.allclose(both[1:], model(b), atol=1e-6)


def test_a_tiled_restoration_uses_the_whole_image_exponent() -> None:
    # a dark left half and a bright right half: tile by tile, each would get its own exponent
    image = _photo((64, 96), seed=6, level=0.1).astype(np.float32)
    image[:, 48:] = np.clip(image[:, 48:] * 6, 0.0, 1.0)
    model = load_model("adaptive-gamma")
    whole = aioir.restore(image, model=model, tile=0, device="cpu")
    tiled = aioir.restore(image, model=model, tile=32, tile_overlap=8, device="cpu")
    np.testing.assert_allclose(tiled, whole, atol=1e-5)


def test_it_has_no_weights_and_bad_arguments_are_refused() -> None:
    model = load_model("adaptive-gamma-brighten")
    assert sum(p.numel() for p in model.parameters()) == 0 and model.state_dict() == {}
    with pytest.raises(ValueError, match="target"):
        AdaptiveGamma(target=1.0)
    with pytest.raises(ValueError, match="eps"):
        AdaptiveGamma(eps=0.0)
