"""The dark channel prior as a module: the classical comparator's numbers, per image, no weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from aioir.evaluate.classical import dehaze_dcp
from aioir.models import DarkChannelPrior, load_model
from aioir.models.dark_channel import box_mean, dark_channel
from aioir.restore import resolve_model


def _hazy(shape: tuple[int, int], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    clean = ndimage.uniform_filter(rng.random((*shape, 3)), size=(5, 5, 1))
    depth = np.linspace(0.2, 0.9, shape[1])[None, :, None]
    airlight = np.array([0.92, 0.88, 0.8])
    return clean * (1 - depth) + airlight * depth


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1)[None]


def _reference_dcp(img: np.ndarray, patch: int, radius: int) -> np.ndarray:
    """He et al.'s algorithm written plainly with SciPy filters (the test's reference)."""

    def box(a: np.ndarray) -> np.ndarray:
        return ndimage.uniform_filter(a, size=2 * radius + 1, mode="reflect")

    def dark(a: np.ndarray) -> np.ndarray:
        return ndimage.minimum_filter(a.min(axis=2), size=patch, mode="nearest")

    d = dark(img)
    n = max(1, round(d.size * 1e-3))
    # every pixel at least as bright as the n-th brightest (the window minimum makes plateaus:
    # ties all count, so the choice does not depend on an arbitrary order)
    idx = np.flatnonzero(d.ravel() >= np.sort(d.ravel())[-n])
    flat = img.reshape(-1, 3)
    airlight = np.maximum(flat[idx[np.argmax(flat[idx].sum(axis=1))]], 1e-3)
    t = 1.0 - 0.95 * dark(img / airlight)
    grey = img @ np.array([0.299, 0.587, 0.114])
    mean_i, mean_p = box(grey), box(t)
    a = (box(grey * t) - mean_i * mean_p) / (box(grey * grey) - mean_i * mean_i + 1e-3)
    t = box(a) * grey + box(mean_p - a * mean_i)
    return np.clip((img - airlight) / np.maximum(t, 0.1)[:, :, None] + airlight, 0.0, 1.0)


@pytest.mark.parametrize("shape", [(40, 56), (310, 320)])
def test_it_matches_a_plain_scipy_implementation(shape: tuple[int, int]) -> None:
    image = _hazy(shape, seed=shape[0])
    with torch.no_grad():
        out = load_model("dark-channel-prior")(_to_tensor(image))[0].permute(1, 2, 0).numpy()
    assert np.abs(out - _reference_dcp(image, 15, 60)).max() < 1e-7  # float64
    assert np.abs(out - image).mean() > 0.02  # it did dehaze
    # the classical comparator: the same algorithm, windows shrunk under 300 px
    small = shape[0] < 300
    expected = _reference_dcp(image, 3, 8) if small else _reference_dcp(image, 15, 60)
    assert np.abs(dehaze_dcp(image) - expected).max() < 1e-7


def test_the_registered_model_keeps_its_windows_at_every_size() -> None:
    model = load_model("dark-channel-prior")
    assert model.windows(40, 56) == model.windows(2000, 3000) == (15, 60)
    assert DarkChannelPrior(scale_reference=300).windows(40, 56) == (3, 8)


def test_box_mean_and_dark_channel_follow_scipy_borders() -> None:
    x = torch.rand(1, 1, 7, 9, dtype=torch.float64)
    for radius in (1, 3, 8):  # 8 > 7: mirrored twice
        expected = ndimage.uniform_filter(x[0, 0].numpy(), size=2 * radius + 1, mode="reflect")
        assert np.allclose(box_mean(x, radius)[0, 0].numpy(), expected, atol=1e-12)
    rgb = torch.rand(1, 3, 7, 9, dtype=torch.float64)
    expected = ndimage.minimum_filter(rgb[0].amin(0).numpy(), size=5, mode="nearest")
    assert np.array_equal(dark_channel(rgb, 5)[0, 0].numpy(), expected)


def test_every_image_of_a_batch_gets_its_own_atmospheric_light() -> None:
    a = _to_tensor(_hazy((48, 48), seed=1)).float()
    b = (_to_tensor(_hazy((48, 48), seed=2)) * 0.7).float()  # a darker haze
    model = DarkChannelPrior()
    with torch.no_grad():
        both = model(torch.cat([a, b]))
        assert torch.allclose(both[:1], model(a), atol=1e-6)
        assert torch.allclose(both[1:], model(b), atol=1e-6)


def test_it_has_no_weights_and_restores_without_a_checkpoint() -> None:
    model = load_model("dark-channel-prior")
    assert sum(p.numel() for p in model.parameters()) == 0 and model.state_dict() == {}
    assert isinstance(resolve_model("dark-channel-prior"), DarkChannelPrior)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="omega"):
        DarkChannelPrior(omega=0.0)
    with pytest.raises(ValueError, match="positive"):
        DarkChannelPrior(patch=0)


def test_the_mild_preset_removes_part_of_the_haze() -> None:
    mild, full = load_model("dark-channel-prior-mild"), load_model("dark-channel-prior")
    assert mild.omega == 0.5 and full.omega == 0.95
    hazy = _to_tensor(_hazy((64, 64), seed=3)).float()
    with torch.no_grad():
        change_mild = (mild(hazy) - hazy).abs().mean()
        change_full = (full(hazy) - hazy).abs().mean()
    assert 0.2 * change_full < change_mild < 0.8 * change_full
