"""CORAL: distance between the second-order statistics of two feature sets.

UDAIR's test-time objective (``docs/methods/udair.md``, "CORAL test-time adaptation").

``Cov(X) = (XᵀX − (1ᵀX)ᵀ(1ᵀX)/n) / (n − 1)`` for ``X ∈ R^{n×C}`` (rows are samples), and

* the UDAIR form (default): ``‖Cov_s − Cov_t‖_F / (4·C²)`` — the Frobenius norm itself;
* ``squared=True``: Deep CORAL (Sun & Saenko 2016), ``‖Cov_s − Cov_t‖²_F / (4·C²)``.

Everything is computed in float32 (or float64 if given), whatever the autocast state: the
covariance of bf16 features loses most of its digits (``docs/methods/udair.md``, "Numerics
and cost").

The non-squared form uses a *safe* square root: its gradient at exactly equal covariances is 0
(a subgradient) instead of ``0/0 = NaN``, so adapting from a perfect match stays finite.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["coral_distance", "coral_loss", "covariance", "safe_sqrt"]


def _as_rows(x: Tensor, name: str) -> Tensor:
    if x.ndim != 2:
        raise ValueError(f"{name}: expected an n×C matrix (rows = samples), got {tuple(x.shape)}")
    if x.shape[0] < 2:
        raise ValueError(f"{name}: need at least 2 rows for a covariance, got {x.shape[0]}")
    return x if x.dtype == torch.float64 else x.float()


def covariance(x: Tensor) -> Tensor:
    """Unbiased ``C×C`` covariance of the rows of ``x`` (n×C), in float32 (float64 kept)."""
    with torch.autocast(x.device.type, enabled=False):
        x = _as_rows(x, "covariance")
        n = x.shape[0]
        s = x.sum(0, keepdim=True)
        return (x.t() @ x - s.t() @ s / n) / (n - 1)


def safe_sqrt(x: Tensor) -> Tensor:
    """``sqrt(x)`` for ``x ≥ 0`` whose gradient is 0 (not NaN/inf) where ``x == 0``."""
    positive = x > 0
    safe = torch.where(positive, x, torch.ones_like(x))
    return torch.where(positive, safe.sqrt(), torch.zeros_like(x))


def coral_distance(cov_src: Tensor, cov_tgt: Tensor, squared: bool = False) -> Tensor:
    """CORAL distance between two ``C×C`` covariances (e.g. a stored source covariance and
    :func:`covariance` of target rows): ``‖Σ_s − Σ_t‖_F / (4·C²)``, squared for Deep CORAL.
    Computed in ``cov_tgt``'s dtype and device, outside autocast."""
    if cov_src.shape != cov_tgt.shape or cov_tgt.ndim != 2:
        raise ValueError(
            f"coral_distance: expected two C×C matrices, got {tuple(cov_src.shape)} "
            f"and {tuple(cov_tgt.shape)}"
        )
    c = cov_tgt.shape[1]
    with torch.autocast(cov_tgt.device.type, enabled=False):
        diff = cov_src.to(device=cov_tgt.device, dtype=cov_tgt.dtype) - cov_tgt
        norm_sq = diff.pow(2).sum()
        value = norm_sq if squared else safe_sqrt(norm_sq)
        return value / (4.0 * c * c)


def coral_loss(x_src: Tensor, x_tgt: Tensor, squared: bool = False) -> Tensor:
    """CORAL distance between two n×C feature sets with the same C (n may differ).

    ``squared=False`` is UDAIR's non-squared form; ``True`` is Deep CORAL.
    """
    if x_src.ndim != 2 or x_tgt.ndim != 2 or x_src.shape[1] != x_tgt.shape[1]:
        raise ValueError(
            f"coral_loss: expected n×C matrices with equal C, got {tuple(x_src.shape)} "
            f"and {tuple(x_tgt.shape)}"
        )
    return coral_distance(covariance(x_src), covariance(x_tgt), squared)
