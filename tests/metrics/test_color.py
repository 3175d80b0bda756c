from __future__ import annotations

import numpy as np
import pytest
import torch

from aioir.metrics import rgb_to_y

# (R, G, B) in [0, 1] → Y on the 0–255 scale, worked out by hand from 16 + 65.481 R + 128.553 G
# + 24.966 B.
TRIPLETS = [
    ((0.0, 0.0, 0.0), 16.0),
    ((1.0, 1.0, 1.0), 235.0),  # 16 + 219
    ((1.0, 0.0, 0.0), 81.481),
    ((0.0, 1.0, 0.0), 144.553),
    ((0.0, 0.0, 1.0), 40.966),
    ((0.5, 0.5, 0.5), 125.5),  # 16 + 219 / 2
    ((0.2, 0.4, 0.6), 16.0 + 13.0962 + 51.4212 + 14.9796),
]


@pytest.mark.parametrize(("rgb", "y255"), TRIPLETS)
def test_hand_computed_triplets_numpy(rgb: tuple[float, float, float], y255: float) -> None:
    img = np.array(rgb, dtype=np.float64).reshape(1, 1, 3)
    assert rgb_to_y(img).shape == (1, 1)
    assert rgb_to_y(img)[0, 0] == pytest.approx(y255 / 255.0, abs=1e-12)
    assert rgb_to_y(img * 255.0, data_range=255.0)[0, 0] == pytest.approx(y255, abs=1e-10)


@pytest.mark.parametrize(("rgb", "y255"), TRIPLETS)
def test_hand_computed_triplets_torch(rgb: tuple[float, float, float], y255: float) -> None:
    img = torch.tensor(rgb, dtype=torch.float64).view(1, 3, 1, 1)
    y = rgb_to_y(img)
    assert y.shape == (1, 1, 1, 1)
    assert float(y) == pytest.approx(y255 / 255.0, abs=1e-12)


def test_rgb_order_not_bgr() -> None:
    # pure red and pure blue must differ the MATLAB way: red is brighter
    red = np.array([[[1.0, 0.0, 0.0]]])
    blue = np.array([[[0.0, 0.0, 1.0]]])
    assert rgb_to_y(red)[0, 0] > rgb_to_y(blue)[0, 0]


def test_matches_basicsr_bgr_convention() -> None:
    rng = np.random.default_rng(0)
    rgb = rng.random((9, 7, 3))
    # BasicSR's bgr2ycbcr(y_only=True): BGR input, weights (24.966, 128.553, 65.481), [0, 1] out
    y_basicsr = (rgb[..., ::-1] @ np.array([24.966, 128.553, 65.481]) + 16.0) / 255.0
    np.testing.assert_allclose(rgb_to_y(rgb), y_basicsr, rtol=0, atol=1e-14)


def test_numpy_and_torch_agree_and_shapes() -> None:
    rng = np.random.default_rng(1)
    batch = rng.random((2, 5, 6, 3))
    y_np = rgb_to_y(batch)
    assert y_np.shape == (2, 5, 6)
    y_t = rgb_to_y(torch.from_numpy(batch).permute(0, 3, 1, 2))
    assert y_t.shape == (2, 1, 5, 6)
    np.testing.assert_allclose(y_t[:, 0].numpy(), y_np, rtol=0, atol=1e-14)


def test_dtypes() -> None:
    img32 = np.full((2, 2, 3), 0.5, dtype=np.float32)
    assert rgb_to_y(img32).dtype == np.float32
    assert rgb_to_y(torch.from_numpy(img32).permute(2, 0, 1)).dtype == torch.float32
    img8 = np.full((2, 2, 3), 255, dtype=np.uint8)
    y8 = rgb_to_y(img8, data_range=255)
    assert y8.dtype == np.float64
    np.testing.assert_allclose(y8, 235.0)


def test_invalid_inputs() -> None:
    with pytest.raises(ValueError, match="×3"):
        rgb_to_y(np.zeros((4, 4, 4)))
    with pytest.raises(ValueError, match="3×H×W"):
        rgb_to_y(torch.zeros(1, 1, 4, 4))
    with pytest.raises(ValueError, match="data_range"):
        rgb_to_y(np.zeros((4, 4, 3)), data_range=0)
    with pytest.raises(TypeError):
        rgb_to_y([[0.0, 0.0, 0.0]])  # type: ignore[call-overload]
