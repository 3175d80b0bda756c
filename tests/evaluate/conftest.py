"""Tiny fixture trees for every benchmark layout, built from crops of the shipped sample photos."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from aioir.data.samples import sample_images
from aioir.io import read_image, write_image

SAMPLES = ("bridge.jpg", "friends.jpg", "greentock.jpg", "life.jpg", "wine.jpg")


def sample_photo(name: str = "life.jpg") -> np.ndarray:
    """A shipped sample photo, float32 H×W×3 in [0, 1]."""
    (path,) = [p for p in sample_images() if p.name == name]
    return read_image(path)


@pytest.fixture(scope="session")
def crops() -> Callable[[int, int, int], np.ndarray]:
    """``crop(i, h, w)``: the i-th distinct real-photo crop of size h×w."""
    photos = [sample_photo(n) for n in SAMPLES]

    def crop(i: int, h: int = 40, w: int = 48) -> np.ndarray:
        img = photos[i % len(photos)]
        top = (37 * i) % (img.shape[0] - h)
        left = (53 * i) % (img.shape[1] - w)
        return img[top : top + h, left : left + w].copy()

    return crop


def _degrade(clean: np.ndarray, i: int) -> np.ndarray:
    rng = np.random.default_rng(i)
    return np.clip(0.8 * clean + 0.1 + rng.normal(0, 0.03, clean.shape), 0, 1).astype(np.float32)


def _pair(folder: Path, inp: str, tgt: str, in_name: str, tgt_name: str, clean: np.ndarray, i: int):
    write_image(folder / inp / in_name, _degrade(clean, i))
    write_image(folder / tgt / tgt_name, clean)


@pytest.fixture
def promptir_tree(tmp_path: Path, crops) -> Path:
    """A 5-task PromptIR tree: 3 BSD68 images, 2 pairs per paired set (3-task uses a subset)."""
    root = tmp_path / "aio"
    for i in range(3):
        write_image(root / "test/denoise/bsd68" / f"img{i}.png", crops(i, 40, 48))
    for i in range(2):
        _pair(
            root / "test/derain/Rain100L",
            "input",
            "target",
            f"rain-{i}.png",
            f"rain-{i}.png",
            crops(10 + i),
            10 + i,
        )
        _pair(
            root / "test/dehaze",
            "input",
            "target",
            f"000{i}_0.8_0.2.png",
            f"000{i}.png",
            crops(20 + i),
            20 + i,
        )
        _pair(
            root / "test/deblur/gopro",
            "input",
            "target",
            f"g{i}.png",
            f"g{i}.png",
            crops(30 + i),
            30 + i,
        )
        _pair(
            root / "test/enhance/lol",
            "input",
            "target",
            f"{i}.png",
            f"{i}.png",
            crops(40 + i),
            40 + i,
        )
    return root


@pytest.fixture
def udair_tree(tmp_path: Path, crops) -> Path:
    """A UDAIR tree: 2 pairs per source test set, 2 per paired target, 1 image per no-GT target
    (large enough for NIQE's default 96-px patches)."""
    root = tmp_path / "udair"
    for k, task in enumerate(("denoising", "dehazing", "deraining", "low-light", "underwater")):
        for i in range(2):
            _pair(
                root / "test" / task,
                "images",
                "labels",
                f"{i}.png",
                f"{i}.png",
                crops(10 * k + i),
                10 * k + i,
            )
    for k, target in enumerate(("denoising_polyu", "deraining_lhp", "underwater_ufo")):
        for i in range(2):
            _pair(
                root / "test" / target,
                "images",
                "labels",
                f"{i}.png",
                f"{i}.png",
                crops(60 + 10 * k + i),
                60 + i,
            )
    for k, target in enumerate(("dehazing_urhi", "low-light_lime")):
        write_image(root / "test" / target / "images" / "real.png", crops(90 + k, 100, 200))
    return root


@pytest.fixture
def paired_dir(tmp_path: Path, crops) -> Path:
    """``input/`` ↔ ``target/`` with 3 pairs (JPEG-free PNGs, stems match)."""
    root = tmp_path / "mine"
    for i in range(3):
        _pair(root, "input", "target", f"p{i}.png", f"p{i}.png", crops(70 + i, 32, 32), 70 + i)
    return root


@pytest.fixture
def clean_dir(tmp_path: Path, crops) -> Path:
    """A folder of 3 clean photos (for ``synthetic:``)."""
    root = tmp_path / "clean"
    for i in range(3):
        write_image(root / f"c{i}.png", crops(80 + i, 48, 48))
    return root
