"""Classical (non-learned) restoration methods, run through the evaluation harness as comparators.

Select them as ``--model classical:NAME``; ``classical:auto`` applies each case's task method.
All take and return RGB ``H×W×3`` float arrays in [0, 1] (numpy/scipy only, plus the ``bm3d``
package for CBM3D):

=================  ==========  ===========================================================
name               task        method
=================  ==========  ===========================================================
``identity``       any         the degraded input itself (the "no restoration" row)
``cbm3d``          noise       CBM3D (Dabov et al., ICIP 2007) via the ``bm3d`` package; σ
                               from the benchmark when it knows it, else estimated blindly
                               (:func:`estimate_noise_sigma`, Donoho & Johnstone 1994)
``dcp``            haze        dark channel prior (He, Sun & Tang, CVPR 2009 / TPAMI 2011)
                               with guided-filter refinement (He, Sun & Tang, TPAMI 2013)
``lime``           lowlight    LIME illumination-map estimation (Guo, Li & Ling, TIP 2017),
                               weighting strategy I, exact sparse solve, no BM3D post-step
``adaptive-gamma`` lowlight    adaptive gamma: one exponent ``γ = ln 0.5 / ln μ`` on every RGB
                               channel, ``μ`` the mean BT.601 luma — the mean-to-0.5 rule of
                               ImageMagick's ``-auto-gamma`` (there per channel); not used by
                               ``auto`` (LIME is), run it by name to report both
``grayworld``      underwater  gray-world white balance (Buchsbaum 1980) + per-channel 1–99 %
                               contrast stretch (as in Iqbal et al. 2007)
``unsharp``        blur        unsharp masking — a *sharpening baseline, not deblurring*:
                               blind deconvolution of motion blur is not attempted
``median-derain``  rain        median-filter streak suppression — a *labelled baseline*,
                               not a published deraining method
=================  ==========  ===========================================================

``classical:auto`` uses :data:`TASK_METHODS`: the table's method of each task, LIME for low
light, and ``identity`` for ``clean`` inputs (nothing to restore).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from scipy import ndimage, sparse
from scipy.sparse import linalg as sparse_linalg

from aioir.color import BT601_LUMA
from aioir.errors import ConfigError

__all__ = [
    "CLASSICAL_METHODS",
    "TASK_METHODS",
    "ClassicalMethod",
    "adaptive_gamma",
    "cbm3d",
    "dark_channel",
    "dehaze_dcp",
    "derain_median",
    "estimate_noise_sigma",
    "get_classical",
    "grayworld_stretch",
    "lime",
    "unsharp_mask",
]

#: ``f(image, metadata) -> (restored image, note)``: the note says what was assumed.
ClassicalFn = Callable[[np.ndarray, Mapping[str, Any]], tuple[np.ndarray, str]]


# --------------------------------------------------------------------------- noise
def estimate_noise_sigma(image: np.ndarray) -> float:
    """Blind estimate of white Gaussian noise σ (image units) from the finest Haar HH band.

    ``σ̂ = median(|HH|) / 0.6745`` per channel (Donoho & Johnstone, Biometrika 1994), averaged
    over channels. Texture biases it upwards slightly; clipping at 0/1 downwards.
    """
    a = np.asarray(image, dtype=np.float64)
    if a.ndim == 2:
        a = a[:, :, None]
    h, w = (a.shape[0] // 2) * 2, (a.shape[1] // 2) * 2
    if h == 0 or w == 0:
        raise ValueError(f"image too small for a noise estimate: shape {a.shape}")
    a = a[:h, :w]
    hh = (a[0::2, 0::2] - a[0::2, 1::2] - a[1::2, 0::2] + a[1::2, 1::2]) / 2.0
    return float(np.mean(np.median(np.abs(hh), axis=(0, 1)) / 0.6745))


def cbm3d(image: np.ndarray, sigma: float | None = None) -> np.ndarray:
    """CBM3D denoising (``bm3d.bm3d_rgb``, opponent colour space); σ in image units ([0, 1]).

    ``sigma=None`` estimates it with :func:`estimate_noise_sigma`.
    """
    try:
        import bm3d
    except ImportError:  # pragma: no cover - depends on the environment
        raise ConfigError(
            "classical:cbm3d needs the 'bm3d' package (pip install 'aioir[classical]')"
        ) from None
    a = np.asarray(image, dtype=np.float64)
    s = estimate_noise_sigma(a) if sigma is None else float(sigma)
    if s <= 0:
        return a.copy()
    return np.clip(bm3d.bm3d_rgb(a, s), 0.0, 1.0)


def _cbm3d_method(image: np.ndarray, meta: Mapping[str, Any]) -> tuple[np.ndarray, str]:
    known = meta.get("sigma")
    if known is not None:
        return cbm3d(image, float(known) / 255.0), "σ given by the benchmark"
    sigma = estimate_noise_sigma(image)
    return cbm3d(image, sigma), "σ estimated blindly (MAD of Haar HH)"


# --------------------------------------------------------------------------- haze
def dark_channel(image: np.ndarray, patch: int) -> np.ndarray:
    """Minimum over colour channels and a ``patch``×``patch`` neighbourhood (He et al. 2009)."""
    return ndimage.minimum_filter(image.min(axis=2), size=patch, mode="nearest")


def dehaze_dcp(
    image: np.ndarray,
    patch: int = 15,
    omega: float = 0.95,
    t0: float = 0.1,
    radius: int = 60,
    eps: float = 1e-3,
) -> np.ndarray:
    """Dark-channel-prior dehazing with guided-filter transmission refinement.

    Paper defaults (patch 15, ω 0.95, t₀ 0.1, guided-filter radius 60) hold for images with a
    short side ≥ 300 px; patch and radius shrink proportionally below that. Atmospheric light:
    among the 0.1 % pixels with the brightest dark channel, the one of highest intensity. The
    algorithm is :class:`aioir.models.DarkChannelPrior` (``scale_reference=300``), run here in
    float64 on an H×W×3 array.
    """
    import torch

    from aioir.models.dark_channel import DarkChannelPrior

    model = DarkChannelPrior(patch, omega, t0, radius, eps, scale_reference=300)
    img = np.clip(np.asarray(image, dtype=np.float64), 0.0, 1.0)
    with torch.no_grad():
        out = model(torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None])
    return out[0].numpy().transpose(1, 2, 0)


# --------------------------------------------------------------------------- low light
def _forward_diff_matrix(h: int, w: int, axis: int) -> sparse.csr_matrix:
    """Sparse forward difference along ``axis`` (0 rows, 1 columns) of a row-major H×W grid;
    the last row/column has no forward neighbour (zero row)."""
    n = h * w
    idx = np.arange(n).reshape(h, w)
    if axis == 0:
        src, dst = idx[:-1].ravel(), idx[1:].ravel()
    else:
        src, dst = idx[:, :-1].ravel(), idx[:, 1:].ravel()
    rows = np.concatenate([src, src])
    cols = np.concatenate([dst, src])
    vals = np.concatenate([np.ones(len(src)), -np.ones(len(src))])
    return sparse.csr_matrix((vals, (rows, cols)), shape=(n, n))


def lime(
    image: np.ndarray,
    alpha: float = 0.15,
    gamma: float = 0.8,
    eps: float = 1e-3,
    max_pixels: int = 400_000,
) -> np.ndarray:
    """LIME low-light enhancement: ``R = I / T^γ`` with a structure-aware illumination map.

    ``T`` minimises ``‖T − T̂‖² + α Σ_d Σ_x (∂_d T)² / (|∂_d T̂| + ε)`` with ``T̂ = max_c I``
    (Guo et al. 2017, weighting strategy I), solved exactly as a sparse linear system. Images
    larger than ``max_pixels`` solve for ``T`` on a down-scaled grid and upsample it.
    LIME's optional BM3D denoising of the result is not applied.
    """
    img = np.clip(np.asarray(image, dtype=np.float64), 0.0, 1.0)
    t_hat_full = img.max(axis=2)
    h, w = t_hat_full.shape
    scale = min(1.0, float(np.sqrt(max_pixels / (h * w))))
    t_hat = ndimage.zoom(t_hat_full, scale, order=1) if scale < 1.0 else t_hat_full
    sh, sw = t_hat.shape
    system = sparse.identity(sh * sw, format="csr")
    vec = t_hat.ravel()
    for axis in (0, 1):
        d = _forward_diff_matrix(sh, sw, axis)
        weight = alpha / (np.abs(d @ vec) + eps)
        system = system + d.T @ sparse.diags(weight) @ d
    t = sparse_linalg.spsolve(system.tocsc(), vec).reshape(sh, sw)
    if scale < 1.0:
        t = ndimage.zoom(t, (h / sh, w / sw), order=1)[:h, :w]
    t = np.clip(t, eps, 1.0) ** gamma
    return np.clip(img / t[:, :, None], 0.0, 1.0)


def adaptive_gamma(image: np.ndarray, target: float = 0.5, eps: float = 1e-3) -> np.ndarray:
    """Gamma correction whose exponent maps the mean luma ``μ`` to ``target``:
    ``I^γ`` with ``γ = ln target / ln μ`` on every RGB channel (μ clipped to [eps, 1 − eps]).

    A dark image (μ < 0.5) gets γ < 1 and brightens; a mid-grey one (μ = 0.5) is left as it is.
    The rule is ImageMagick's ``-auto-gamma`` (which fits each channel separately); one exponent
    for all channels keeps the hue of the image. The algorithm is
    :class:`aioir.models.AdaptiveGamma`, run here in float64 on an H×W×3 array.
    """
    import torch

    from aioir.models.exposure import AdaptiveGamma

    model = AdaptiveGamma(target, eps)
    img = np.clip(np.asarray(image, dtype=np.float64), 0.0, 1.0)
    with torch.no_grad():
        out = model(torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None])
    return out[0].numpy().transpose(1, 2, 0)


# --------------------------------------------------------------------------- underwater
def grayworld_stretch(image: np.ndarray, low: float = 1.0, high: float = 99.0) -> np.ndarray:
    """Gray-world white balance, then a per-channel ``low``–``high`` percentile stretch."""
    img = np.clip(np.asarray(image, dtype=np.float64), 0.0, 1.0)
    means = img.reshape(-1, 3).mean(axis=0)
    balanced = np.clip(img * (means.mean() / np.maximum(means, 1e-6)), 0.0, 1.0)
    lo = np.percentile(balanced.reshape(-1, 3), low, axis=0)
    hi = np.percentile(balanced.reshape(-1, 3), high, axis=0)
    return np.clip((balanced - lo) / np.maximum(hi - lo, 1e-6), 0.0, 1.0)


# --------------------------------------------------------------------------- blur
def unsharp_mask(image: np.ndarray, sigma: float = 1.5, amount: float = 0.8) -> np.ndarray:
    """Unsharp masking ``I + amount·(I − G_σ * I)``: sharpening, not deconvolution."""
    img = np.asarray(image, dtype=np.float64)
    blurred = ndimage.gaussian_filter(img, sigma=(sigma, sigma, 0), mode="reflect")
    return np.clip(img + amount * (img - blurred), 0.0, 1.0)


# --------------------------------------------------------------------------- rain
def derain_median(image: np.ndarray, size: int = 7, threshold: float = 0.03) -> np.ndarray:
    """Replace pixels brighter than their ``size``×``size`` median luma by ``threshold`` with
    the per-channel median: rain streaks are thin and bright. A labelled baseline."""
    img = np.asarray(image, dtype=np.float64)
    median = ndimage.median_filter(img, size=(size, size, 1), mode="reflect")
    luma = np.array(BT601_LUMA)
    mask = (img @ luma - median @ luma) > threshold
    mask = ndimage.binary_dilation(mask, iterations=1)
    return np.where(mask[:, :, None], median, img)


# --------------------------------------------------------------------------- registry
@dataclasses.dataclass(frozen=True)
class ClassicalMethod:
    """A classical comparator: name, task, a citation-style title and the function."""

    name: str
    task: str | None
    title: str
    fn: ClassicalFn = dataclasses.field(repr=False, compare=False)

    def __call__(self, image: np.ndarray, meta: Mapping[str, Any] | None = None) -> np.ndarray:
        """Restore ``image`` (H×W×3 in [0, 1]); ``meta`` may carry ``sigma`` (0–255 scale)."""
        return self.fn(image, meta or {})[0]


def _plain(f: Callable[[np.ndarray], np.ndarray], note: str = "") -> ClassicalFn:
    return lambda image, meta: (f(image), note)


#: Every classical method, by name.
CLASSICAL_METHODS: dict[str, ClassicalMethod] = {
    m.name: m
    for m in (
        ClassicalMethod(
            "identity", None, "input (no restoration)", _plain(lambda x: np.asarray(x))
        ),
        ClassicalMethod("cbm3d", "noise", "CBM3D (Dabov et al. 2007)", _cbm3d_method),
        ClassicalMethod(
            "dcp",
            "haze",
            "dark channel prior + guided filter (He et al. 2009/2013)",
            _plain(dehaze_dcp),
        ),
        ClassicalMethod("lime", "lowlight", "LIME (Guo et al. 2017)", _plain(lime)),
        ClassicalMethod(
            "adaptive-gamma",
            "lowlight",
            "adaptive gamma, mean luma → 0.5 (ImageMagick -auto-gamma rule)",
            _plain(adaptive_gamma),
        ),
        ClassicalMethod(
            "grayworld",
            "underwater",
            "gray world + contrast stretch (Buchsbaum 1980)",
            _plain(grayworld_stretch),
        ),
        ClassicalMethod(
            "unsharp",
            "blur",
            "unsharp mask (sharpening baseline, not deblurring)",
            _plain(unsharp_mask),
        ),
        ClassicalMethod(
            "median-derain",
            "rain",
            "median-filter streak suppression (labelled baseline)",
            _plain(derain_median),
        ),
    )
}

#: The method ``classical:auto`` uses for each task.
TASK_METHODS: dict[str, str] = {
    "noise": "cbm3d",
    "haze": "dcp",
    "lowlight": "lime",
    "underwater": "grayworld",
    "blur": "unsharp",
    "rain": "median-derain",
    "clean": "identity",
}


def get_classical(name: str) -> ClassicalMethod:
    """The classical method called ``name`` (ConfigError listing the names otherwise)."""
    try:
        return CLASSICAL_METHODS[name]
    except KeyError:
        raise ConfigError(
            f"unknown classical method {name!r}; expected auto or one of "
            f"{', '.join(CLASSICAL_METHODS)}"
        ) from None
