import numpy as np
import torch

from aioir.degradations import TASKS, available_degradations, degradation_class, random_degradation
from aioir.degradations.identity import Identity


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
