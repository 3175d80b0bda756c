"""NIQE, the Natural Image Quality Evaluator (Mittal, Soundararajan & Bovik, IEEE SPL 2013).

A no-reference metric for test sets without ground truth (UDAIR's URHI and LIME targets): the
distance between a multivariate Gaussian (MVG) fitted to natural-scene-statistics features of the
image's patches and an MVG fitted to the same features of *pristine* photos. Lower is better.

Features follow the authors' MATLAB release (``computefeature.m``, ``computequality.m``,
``estimatemodelparam.m``): luma on the 0–255 scale; MSCN coefficients with a 7×7 Gaussian window
(σ 7/6, replicate borders, ``(I − μ) / (σ + 1)``); per 96×96 patch an AGGD fit of the MSCN
coefficients (shape, mean scale) and of their products with the four neighbours (horizontal,
vertical, two diagonals; shape, mean, left and right scale) — 18 numbers — at the native scale
and at half scale (48×48 patches), 36 in all. The pristine model keeps only the patches whose
sharpness (mean local σ) exceeds 0.75 × the image's sharpest patch; test images use every patch.

**Our pristine model is not the original.** The authors fitted theirs on 125 pristine photos we
cannot redistribute or download offline; ours (``niqe_corpus.npz`` beside this module, made by
:func:`fit_corpus_model` on the ``train`` split of aioir's photo corpus, :mod:`aioir.data.photos`)
is fitted on Debian wallpaper photos (CC, GPL and LGPL licences; see the corpus ``SOURCES.tsv``)
resized to long sides of 1024, 768 and 512 px. Absolute NIQE values therefore differ from
published NIQE numbers (and from BasicSR's/pyiqa's NIQE): use them to compare methods under
aioir, never against a paper's NIQE column. Differences from the MATLAB code besides the model:
half-scale images come from Pillow's antialiased bicubic resize (MATLAB ``imresize``) and luma
from BT.601 weights 0.299/0.587/0.114 (MATLAB ``rgb2gray``: 0.2989/0.5870/0.1140).

Refit with ``python -m aioir.evaluate.niqe CORPUS_DIR OUT.npz``.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path

import numpy as np
from scipy import ndimage, special

from aioir.color import BT601_LUMA
from aioir.errors import ConfigError

__all__ = [
    "DEFAULT_MODEL_FILE",
    "NIQEModel",
    "default_niqe_model",
    "fit_corpus_model",
    "fit_niqe_model",
    "niqe",
    "niqe_features",
]

#: File name of the shipped pristine model (in this package's folder).
DEFAULT_MODEL_FILE = "niqe_corpus.npz"

_GAMMA_GRID = np.arange(0.2, 10.001, 0.001)
_R_GAMMA = special.gamma(2.0 / _GAMMA_GRID) ** 2 / (
    special.gamma(1.0 / _GAMMA_GRID) * special.gamma(3.0 / _GAMMA_GRID)
)
_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))


def _gaussian_window(size: int = 7, sigma: float = 7.0 / 6.0) -> np.ndarray:
    """MATLAB ``fspecial('gaussian', size, sigma)``: normalised 2-D Gaussian."""
    r = (size - 1) / 2.0
    x = np.arange(-r, r + 1)
    g = np.exp(-(x**2) / (2 * sigma**2))
    w = np.outer(g, g)
    return w / w.sum()


_WINDOW = _gaussian_window()


def _to_luma255(image: np.ndarray) -> np.ndarray:
    """H×W×3 RGB or H×W gray in [0, 1] → float64 luma on the 0–255 scale."""
    a = np.asarray(image, dtype=np.float64)
    if a.ndim == 3 and a.shape[2] == 3:
        a = a @ np.array(BT601_LUMA)
    elif a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    elif a.ndim != 2:
        raise ValueError(f"NIQE expects an H×W×3 or H×W image, got shape {a.shape}")
    return np.clip(a, 0.0, 1.0) * 255.0


def _mscn(luma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MSCN coefficients and the local standard deviation (NIQE's ``structdis``, ``sigma``)."""
    mu = ndimage.correlate(luma, _WINDOW, mode="nearest")
    var = ndimage.correlate(luma * luma, _WINDOW, mode="nearest") - mu * mu
    sigma = np.sqrt(np.abs(var))
    return (luma - mu) / (sigma + 1.0), sigma


def _blocks(a: np.ndarray, size: int) -> np.ndarray:
    """Non-overlapping ``size``×``size`` blocks of a 2-D array (row-major), shape N×size×size."""
    h, w = (a.shape[0] // size) * size, (a.shape[1] // size) * size
    b = a[:h, :w].reshape(h // size, size, w // size, size).swapaxes(1, 2)
    return b.reshape(-1, size, size)


def _aggd(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Moment-matching AGGD fit per row of N×M samples → (shape α, left β, right β)."""
    neg, pos = x < 0, x > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        left = np.sqrt((np.where(neg, x * x, 0.0)).sum(1) / neg.sum(1))
        right = np.sqrt((np.where(pos, x * x, 0.0)).sum(1) / pos.sum(1))
        gamma_hat = left / right
        r_hat = np.mean(np.abs(x), axis=1) ** 2 / np.mean(x * x, axis=1)
        r_norm = r_hat * (gamma_hat**3 + 1) * (gamma_hat + 1) / (gamma_hat**2 + 1) ** 2
    alpha = np.full(x.shape[0], np.nan)
    ok = np.isfinite(r_norm)
    if ok.any():
        # r(γ) increases monotonically, so the closest grid point is a neighbour of the insert
        idx = np.clip(np.searchsorted(_R_GAMMA, r_norm[ok]), 1, len(_R_GAMMA) - 1)
        closer_left = np.abs(_R_GAMMA[idx - 1] - r_norm[ok]) <= np.abs(_R_GAMMA[idx] - r_norm[ok])
        alpha[ok] = _GAMMA_GRID[idx - closer_left]
    with np.errstate(invalid="ignore"):
        ratio = np.sqrt(special.gamma(1.0 / alpha) / special.gamma(3.0 / alpha))
    return alpha, left * ratio, right * ratio


def _block_features(mscn: np.ndarray, size: int) -> np.ndarray:
    """The 18 NIQE features of every ``size``×``size`` block of an MSCN map, shape N×18."""
    blocks = _blocks(mscn, size)
    n = blocks.shape[0]
    alpha, bl, br = _aggd(blocks.reshape(n, -1))
    feats = [alpha, (bl + br) / 2.0]
    for shift in _SHIFTS:
        pair = blocks * np.roll(blocks, shift, axis=(1, 2))  # circular shift inside the block
        alpha, bl, br = _aggd(pair.reshape(n, -1))
        with np.errstate(invalid="ignore"):
            mean = (br - bl) * special.gamma(2.0 / alpha) / special.gamma(1.0 / alpha)
        feats += [alpha, mean, bl, br]
    return np.stack(feats, axis=1)


def _half(luma: np.ndarray) -> np.ndarray:
    """Half-size image by antialiased bicubic resampling (MATLAB ``imresize(im, 0.5)``)."""
    from PIL import Image

    h, w = luma.shape
    img = Image.fromarray(luma.astype(np.float32), mode="F")
    return np.asarray(img.resize((w // 2, h // 2), Image.Resampling.BICUBIC), dtype=np.float64)


def niqe_features(image: np.ndarray, patch_size: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """Per-patch NIQE features and sharpness of an RGB/gray image in [0, 1].

    Returns ``(features N×36, sharpness N)``; the image is cropped to a multiple of
    ``patch_size`` (top-left kept, as the MATLAB code does). ``patch_size`` must be even.
    """
    if patch_size < 4 or patch_size % 2:
        raise ValueError(f"patch_size must be an even number ≥ 4, got {patch_size}")
    luma = _to_luma255(image)
    h, w = (luma.shape[0] // patch_size) * patch_size, (luma.shape[1] // patch_size) * patch_size
    if h == 0 or w == 0:
        raise ValueError(
            f"NIQE needs an image of at least {patch_size}×{patch_size} px, got "
            f"{luma.shape[1]}×{luma.shape[0]}"
        )
    luma = luma[:h, :w]
    mscn1, sigma = _mscn(luma)
    f1 = _block_features(mscn1, patch_size)
    mscn2, _ = _mscn(_half(luma))
    f2 = _block_features(mscn2, patch_size // 2)
    sharpness = _blocks(sigma, patch_size).mean(axis=(1, 2))
    return np.concatenate([f1, f2], axis=1), sharpness


def _finite_rows(x: np.ndarray) -> np.ndarray:
    return x[np.all(np.isfinite(x), axis=1)]


@dataclasses.dataclass(frozen=True)
class NIQEModel:
    """A pristine MVG: feature mean (36), covariance (36×36), patch size, patch count, provenance."""

    mean: np.ndarray
    cov: np.ndarray
    patch_size: int = 96
    n_patches: int = 0
    info: str = ""

    def save(self, path: str | Path) -> Path:
        """Write the model as ``.npz`` (mean, cov, patch_size, info), atomically."""
        import io

        from aioir.io import write_bytes_atomically

        path = Path(path)
        buffer = io.BytesIO()
        np.savez(
            buffer,
            mean=self.mean,
            cov=self.cov,
            patch_size=np.array(self.patch_size),
            n_patches=np.array(self.n_patches),
            info=np.array(self.info),
        )
        write_bytes_atomically(path, buffer.getvalue(), overwrite=True)
        return path

    @classmethod
    def load(cls, path: str | Path) -> NIQEModel:
        """Read a model written by :meth:`save`."""
        with np.load(Path(path), allow_pickle=False) as z:
            return cls(
                mean=z["mean"].astype(np.float64),
                cov=z["cov"].astype(np.float64),
                patch_size=int(z["patch_size"]),
                n_patches=int(z["n_patches"]),
                info=str(z["info"]),
            )


def fit_niqe_model(
    images: Iterable[np.ndarray],
    patch_size: int = 96,
    sharpness_threshold: float = 0.75,
    info: str = "",
) -> NIQEModel:
    """Fit a pristine NIQE model on clean images (RGB H×W×3 float in [0, 1]).

    Per image, the patches sharper than ``sharpness_threshold`` × its sharpest patch are kept
    (``estimatemodelparam.m``); the model is the mean and covariance of their features.
    """
    kept = []
    for img in images:
        feats, sharp = niqe_features(img, patch_size)
        if sharp.size:
            kept.append(feats[sharp > sharpness_threshold * sharp.max()])
    feats = _finite_rows(np.concatenate(kept, axis=0)) if kept else np.empty((0, 36))
    if feats.shape[0] < 2:
        raise ValueError("fit_niqe_model: fewer than two usable patches; give more/larger images")
    return NIQEModel(
        mean=feats.mean(axis=0),
        cov=np.cov(feats, rowvar=False),
        patch_size=patch_size,
        n_patches=int(feats.shape[0]),
        info=info,
    )


@functools.cache
def default_niqe_model() -> NIQEModel:
    """The shipped pristine model fitted on aioir's photo corpus (see the module docstring)."""
    ref = resources.files("aioir.evaluate").joinpath(DEFAULT_MODEL_FILE)
    if not ref.is_file():
        raise ConfigError(
            f"the NIQE model {DEFAULT_MODEL_FILE} is missing from aioir.evaluate; refit it with "
            "`python -m aioir.evaluate.niqe CORPUS_DIR OUT.npz`"
        )
    with resources.as_file(ref) as path:
        return NIQEModel.load(path)


def niqe(image: np.ndarray, model: NIQEModel | None = None) -> float:
    """NIQE of an RGB H×W×3 (or gray H×W) image in [0, 1]; lower means more natural.

    Uses :func:`default_niqe_model` unless ``model`` is given. The image needs at least two
    patches (e.g. 192×96 px for the default 96-px patches).
    """
    model = model if model is not None else default_niqe_model()
    feats, _ = niqe_features(image, model.patch_size)
    feats = _finite_rows(feats)
    if feats.shape[0] < 2:
        raise ValueError(
            f"NIQE needs at least two {model.patch_size}-px patches with usable statistics; "
            f"image shape {np.shape(image)}"
        )
    diff = model.mean - feats.mean(axis=0)
    cov = (model.cov + np.cov(feats, rowvar=False)) / 2.0
    return float(math.sqrt(max(float(diff @ np.linalg.pinv(cov) @ diff), 0.0)))


def _resize_long_side(image: np.ndarray, long_side: int) -> np.ndarray:
    from PIL import Image

    h, w = image.shape[:2]
    scale = long_side / max(h, w)
    if scale >= 1.0:
        return image
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    pil = Image.fromarray(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8))
    return np.asarray(pil.resize(size, Image.Resampling.LANCZOS), dtype=np.float32) / 255.0


def fit_corpus_model(
    corpus_dir: str | Path, split: str = "train", long_sides: Sequence[int] = (1024, 768, 512)
) -> NIQEModel:
    """Fit :func:`fit_niqe_model` on a photo corpus split, each photo at several long sides."""
    from aioir.data.photos import load_corpus
    from aioir.io import read_image

    paths = load_corpus(corpus_dir).split(split)
    if not paths:
        raise ConfigError(f"{corpus_dir}: the photo corpus has no {split!r} photos")

    def images() -> Iterable[np.ndarray]:
        for p in paths:
            img = read_image(p)
            for side in long_sides:
                yield _resize_long_side(img, side)

    info = json.dumps(
        {
            "corpus_split": split,
            "photos": len(paths),
            "long_sides": list(long_sides),
            "files": [p.name for p in paths],
            "reference": "Mittal et al., IEEE SPL 2013; pristine model refitted by aioir",
        }
    )
    return fit_niqe_model(images(), info=info)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m aioir.evaluate.niqe CORPUS_DIR OUT.npz``: refit the pristine model."""
    parser = argparse.ArgumentParser(description="Fit the NIQE pristine model on a photo corpus")
    parser.add_argument("corpus", type=Path, help="photo corpus folder (with SOURCES.tsv)")
    parser.add_argument("out", type=Path, help="output .npz")
    parser.add_argument("--split", default="train")
    args = parser.parse_args(argv)
    model = fit_corpus_model(args.corpus, args.split)
    model.save(args.out)
    photos = json.loads(model.info)["photos"]
    print(f"wrote {args.out}: {photos} photos, {model.n_patches} pristine patches")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
