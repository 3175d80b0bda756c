"""Shared fixtures: a tiny clean-photo corpus (train/ and val/ folders of smooth images)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def make_corpus(
    root: Path, n_train: int = 3, n_val: int = 2, size: tuple[int, int] = (72, 88)
) -> Path:
    rng = np.random.default_rng(0)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w] / 30.0
    for split, n in (("train", n_train), ("val", n_val)):
        (root / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            k = i + (10 if split == "val" else 0)
            img = np.stack(
                [
                    0.5 + 0.35 * np.sin(xx * (1 + 0.3 * k) + c) * np.cos(yy * (1 + 0.2 * c) + k)
                    for c in range(3)
                ],
                -1,
            )
            img = img + rng.normal(0, 0.01, img.shape)
            Image.fromarray((img.clip(0, 1) * 255).astype(np.uint8)).save(
                root / split / f"{split}{i}.png"
            )
    return root


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("corpus"))
