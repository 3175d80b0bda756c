import numpy as np
import torch

from aioir.degradations import available_degradations, degradation_class, random_degradation
from aioir.degradations.identity import Identity
from aioir.tasks import TASKS


def test_identity_is_the_clean_task_and_changes_nothing():
    assert "clean" in TASKS
    assert available_degradations("clean") == ["identity"]
    assert degradation_class("identity") is Identity
    x = torch.rand(2, 3, 16, 16)
    d = random_degradation("clean", "severe", torch.Generator().manual_seed(0))
    out = d(x, seed=1)
    assert torch.equal(out, x) and out is not x
    img = (np.random.default_rng(0).random((8, 8, 3)) * 255).astype(np.uint8)
    assert np.array_equal(Identity()(img), img)


def test_integer_numpy_images_keep_their_range_and_type():
    from aioir.degradations.noise import GaussianNoise

    rng = np.random.default_rng(1)
    img16 = (rng.random((16, 16, 3)) * 65535).astype(np.uint16)
    out = GaussianNoise(sigma=5.0, quantize=False)(img16, seed=0)
    assert out.dtype == np.uint16
    # σ 5 on the 0–255 scale is ≈ 1285 on 0–65535: same order of change, not a clipped mess
    diff = np.abs(out.astype(np.float64) - img16).mean()
    assert 300 < diff < 3000
