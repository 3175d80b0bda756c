"""Codebook-alignment domain adaptation: our reading of UDAIR arXiv v1's "domain adaptation
strategy … to build the feature projection between the source and target domains by dynamically
aligning their codebook embeddings" (absent from the authors' released code; the interpretation
is written out in ``docs/methods/udair.md``, "Codebook alignment").

A training-time stage, run once per target domain, after source training:

* **the projection**: a :class:`~aioir.methods.udair.model.CodeProjector` (``z + Wz + b``, a
  residual 1×1, the identity at start) between the DAM's bottom encoder and its bottom
  quantiser, so it changes which codewords the target's features are assigned to — the only
  parameters learnt; everything else (backbone, DAM, codebook, adapters) stays frozen;
* **source statistics**, computed once with the unadapted model on a fixed pool of random
  source-domain crops: the mean and covariance of the pre-quantisation features ``z`` and of
  their quantised embeddings ``q`` (rows = H/4 positions), and the *soft codeword usage*
  ``u_s = mean_p softmax(−‖z_p − c_k‖² / τ)`` (``τ``: the median squared distance of a source
  feature to its nearest codeword);
* **alignment loss** on target crops (projected ``z_t``, straight-through ``q_t``)::

      L_align = w_u · KL(u_s ‖ u_t)
              + w_c · (‖Σ_s^z − Σ_t^z‖_F / ‖Σ_s^z‖_F + ‖Σ_s^q − Σ_t^q‖_F / ‖Σ_s^q‖_F)
              + w_m · ‖μ_s^z − μ_t^z‖² / tr Σ_s^z

* **source reconstruction**: ``w_r · L1(model(x_s), model₀(x_s))`` on the source crops, the
  adapted model against the unadapted one's restoration (no ground truth needed), so the
  projection may move target features but must leave source restoration intact;
* AdamW on the projector; a fixed probe batch of target and source crops measures the
  alignment loss, the hard codeword-usage distance ``½‖h_s − h_t‖₁`` and the source
  reconstruction before and after.

:func:`aioir.methods.udair.adapt.save_adapted` saves the result (config override
``code_projector: true``), which loads with ``aioir.load_model(DIR)`` / ``aioir restore
--model DIR``. ``aioir adapt --method codebook --source DIR`` runs it from the command line.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aioir.errors import ConfigError
from aioir.methods.udair.adapt import random_square_crop
from aioir.methods.udair.model import CodeProjector, UDAIRBase

__all__ = [
    "AlignConfig",
    "AlignResult",
    "SourceStatistics",
    "align_codebook",
    "alignment_loss",
    "soft_usage",
    "source_statistics",
]


@dataclasses.dataclass(frozen=True)
class AlignConfig:
    """Settings of :func:`align_codebook` (module docstring).

    Args:
        steps: optimiser steps.
        lr, weight_decay: AdamW settings of the projector.
        batch_size: target crops and source crops per step (each).
        crop: crop side (default: the bank's patch size, else 64).
        source_crops: size of the fixed pool of source crops (statistics and reconstruction).
        usage_weight, coral_weight, mean_weight: ``w_u``, ``w_c``, ``w_m``.
        recon_weight: ``w_r`` of the source reconstruction term.
        temperature: ``τ`` of the soft codeword usage (default: from the source features).
        seed: seeds the crops.
    """

    steps: int = 200
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 8
    crop: int | None = None
    source_crops: int = 32
    usage_weight: float = 1.0
    coral_weight: float = 1.0
    mean_weight: float = 1.0
    recon_weight: float = 10.0
    temperature: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.source_crops < 2:
            raise ConfigError("align: steps and batch size must be >= 1, source crops >= 2")
        if self.lr <= 0:
            raise ConfigError(f"align: lr must be > 0, not {self.lr}")
        if self.crop is not None and (self.crop < 16 or self.crop % 8):
            raise ConfigError(f"align: crop must be a multiple of 8, >= 16, not {self.crop}")
        if self.temperature is not None and self.temperature <= 0:
            raise ConfigError(f"align: temperature must be > 0, not {self.temperature}")


@dataclasses.dataclass
class SourceStatistics:
    """What the target is aligned to (rows = bottom-code positions, fp64)."""

    z_mean: Tensor
    z_cov: Tensor
    q_mean: Tensor
    q_cov: Tensor
    usage: Tensor  # soft codeword usage, K
    hard_usage: Tensor  # hard assignment histogram, K (normalised)
    temperature: float


@dataclasses.dataclass
class AlignResult:
    """What :func:`align_codebook` did."""

    losses: list[float]
    before: dict[str, float]
    after: dict[str, float]
    seconds: float
    config: AlignConfig
    crop: int
    images: int
    source_images: int

    def summary(self) -> dict[str, Any]:
        """JSON-able record (the saved model's ``domain_adaptation`` metadata)."""
        return {
            "method": "codebook",
            "images": self.images,
            "source_images": self.source_images,
            "steps": self.config.steps,
            "lr": self.config.lr,
            "batch_size": self.config.batch_size,
            "crop": self.crop,
            "weights": {
                "usage": self.config.usage_weight,
                "coral": self.config.coral_weight,
                "mean": self.config.mean_weight,
                "recon": self.config.recon_weight,
            },
            "seed": self.config.seed,
            "before": self.before,
            "after": self.after,
            "initial_loss": self.before["align"],
            "final_loss": self.after["align"],
            "seconds": round(self.seconds, 2),
        }


def _rows(x: Tensor) -> Tensor:
    """B×C×H×W → (B·H·W)×C."""
    return x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])


def _cov(rows: Tensor) -> Tensor:
    centred = rows - rows.mean(0, keepdim=True)
    return centred.t() @ centred / max(1, rows.shape[0] - 1)


def _sq_dist(rows: Tensor, embed: Tensor) -> Tensor:
    """Squared distances of rows (N×D) to the codewords (D×K): N×K."""
    return rows.pow(2).sum(1, keepdim=True) - 2 * rows @ embed + embed.pow(2).sum(0, keepdim=True)


def soft_usage(rows: Tensor, embed: Tensor, temperature: float) -> Tensor:
    """Soft codeword usage: the mean over rows of ``softmax(−‖z − c_k‖² / τ)`` (K values)."""
    return torch.softmax(-_sq_dist(rows, embed) / temperature, dim=1).mean(0)


def _hard_usage(rows: Tensor, embed: Tensor) -> Tensor:
    counts = torch.bincount(_sq_dist(rows, embed).argmin(1), minlength=embed.shape[1])
    return counts.double() / counts.sum().clamp_min(1)


def _codes(model: UDAIRBase, x: Tensor) -> tuple[Tensor, Tensor]:
    """(projected pre-quantisation rows, straight-through quantised rows) of a batch."""
    z = model.dam.bottom_features(x)
    q, _, _ = model.dam.codebook.quantize_b(z)
    return _rows(z), _rows(q)


@torch.no_grad()
def source_statistics(
    model: UDAIRBase, crops: Tensor, temperature: float | None = None, batch: int = 8
) -> SourceStatistics:
    """The source statistics of :func:`alignment_loss` from source crops (B×3×S×S)."""
    zs, qs = [], []
    for i in range(0, crops.shape[0], batch):
        z, q = _codes(model, crops[i : i + batch])
        zs.append(z.double())
        qs.append(q.double())
    z, q = torch.cat(zs), torch.cat(qs)
    embed = model.dam.codebook.quantize_b.embed.double()
    if temperature is None:
        nearest = _sq_dist(z, embed).min(1).values
        temperature = float(nearest.median().clamp_min(1e-8))
    return SourceStatistics(
        z.mean(0),
        _cov(z),
        q.mean(0),
        _cov(q),
        soft_usage(z, embed, temperature),
        _hard_usage(z, embed),
        temperature,
    )


def alignment_loss(
    z: Tensor, q: Tensor, stats: SourceStatistics, embed: Tensor, config: AlignConfig
) -> tuple[Tensor, dict[str, float]]:
    """``L_align`` of target rows (module docstring) and its terms (floats)."""
    z, q, embed = z.double(), q.double(), embed.detach().double()
    usage = soft_usage(z, embed, stats.temperature)
    kl = (stats.usage * (stats.usage.clamp_min(1e-12).log() - usage.clamp_min(1e-12).log())).sum()
    coral_z = (stats.z_cov - _cov(z)).norm() / stats.z_cov.norm().clamp_min(1e-12)
    coral_q = (stats.q_cov - _cov(q)).norm() / stats.q_cov.norm().clamp_min(1e-12)
    mean = (stats.z_mean - z.mean(0)).pow(2).sum() / torch.trace(stats.z_cov).clamp_min(1e-12)
    total = (
        config.usage_weight * kl
        + config.coral_weight * (coral_z + coral_q)
        + config.mean_weight * mean
    )
    terms = {
        "usage_kl": float(kl.detach()),
        "coral_z": float(coral_z.detach()),
        "coral_q": float(coral_q.detach()),
        "mean": float(mean.detach()),
    }
    return total, terms


def _at_least(x: Tensor, side: int) -> Tensor:
    h, w = x.shape[-2:]
    if min(h, w) >= side:
        return x
    scale = side / min(h, w)
    size = (max(side, round(h * scale)), max(side, round(w * scale)))
    return F.interpolate(x[None], size=size, mode="bicubic", align_corners=False)[0].clamp(0, 1)


def _crops(images: list[Tensor], n: int, side: int, gen: torch.Generator) -> Tensor:
    # per crop: draw the image, then the place (the generator's order is part of the seed)
    return torch.stack(
        [
            random_square_crop(
                images[int(torch.randint(0, len(images), (), generator=gen))], side, gen
            )
            for _ in range(n)
        ]
    )


def _measure(
    model: UDAIRBase,
    target: Tensor,
    source: Tensor,
    reference: Tensor,
    stats: SourceStatistics,
    config: AlignConfig,
) -> dict[str, float]:
    embed = model.dam.codebook.quantize_b.embed
    with torch.no_grad():
        z, q = _codes(model, target)
        loss, terms = alignment_loss(z, q, stats, embed, config)
        tv = 0.5 * float((_hard_usage(z.double(), embed.double()) - stats.hard_usage).abs().sum())
        recon = float(F.l1_loss(model(source), reference))
    return {"align": float(loss), **terms, "usage_tv": tv, "source_l1": recon}


def align_codebook(
    model: nn.Module,
    target: str | os.PathLike[str] | Sequence[Any],
    source: str | os.PathLike[str] | Sequence[Any],
    config: AlignConfig | None = None,
    *,
    progress: Callable[[int, float], None] | None = None,
) -> AlignResult:
    """Learn a code projector that aligns ``target``'s codebook embeddings with ``source``'s,
    in place (module docstring).

    ``target``, ``source``: folders, image paths or ``(name, 3×H×W tensor)`` pairs (unlabelled;
    the source images are source-domain *inputs*, e.g. the training set's degraded images).
    Afterwards the model has a trained ``dam.code_projector``, is in eval mode, and its
    ``aioir_config`` records ``code_projector=True``. ``progress(step, loss)`` after each step.
    """
    from aioir.methods.udair.adapt import _load_images
    from aioir.methods.udair.tta import bank_patch_size

    cfg = config or AlignConfig()
    if not isinstance(model, UDAIRBase):
        raise ConfigError("codebook alignment needs a UDAIR model")
    start = time.perf_counter()
    device = next(model.parameters()).device
    bank = getattr(model, "source_bank", None)
    side = cfg.crop or (bank_patch_size(bank) if bank is not None else 64)
    side = max(16, side - side % 8)
    targets = [_at_least(t, side).to(device) for _, t in _load_images(target)]
    sources = [_at_least(t, side).to(device) for _, t in _load_images(source)]
    model.eval()
    embed_dim = int(model.dam.codebook.quantize_b.dim)
    model.dam.code_projector = CodeProjector(embed_dim).to(device)  # identity: the source model
    gen = torch.Generator().manual_seed(cfg.seed)
    pool = _crops(sources, cfg.source_crops, side, gen)
    with torch.no_grad():
        reference = torch.cat([model(pool[i : i + 8]) for i in range(0, len(pool), 8)])
    stats = source_statistics(model, pool, cfg.temperature)
    probe_gen = torch.Generator().manual_seed(cfg.seed + 1)
    probe_target = _crops(targets, max(cfg.batch_size, 8), side, probe_gen)
    probe_index = torch.arange(min(len(pool), max(cfg.batch_size, 8)))
    probe_source, probe_reference = pool[probe_index], reference[probe_index]
    before = _measure(model, probe_target, probe_source, probe_reference, stats, cfg)

    for p in model.parameters():
        p.requires_grad_(False)
    params = list(model.dam.code_projector.parameters())
    for p in params:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    embed = model.dam.codebook.quantize_b.embed
    losses: list[float] = []
    try:
        with torch.enable_grad():
            for step in range(cfg.steps):
                z, q = _codes(model, _crops(targets, cfg.batch_size, side, gen))
                loss, _ = alignment_loss(z, q, stats, embed, cfg)
                idx = torch.randint(0, len(pool), (cfg.batch_size,), generator=gen)
                recon = F.l1_loss(model(pool[idx]), reference[idx])
                total = loss.float() + cfg.recon_weight * recon
                optimizer.zero_grad(set_to_none=True)
                total.backward()
                optimizer.step()
                losses.append(float(total.detach()))
                if progress is not None:
                    progress(step + 1, losses[-1])
    finally:
        for p in model.parameters():
            p.requires_grad_(True)
            p.grad = None
    model.eval()
    after = _measure(model, probe_target, probe_source, probe_reference, stats, cfg)
    config_record = copy.deepcopy(getattr(model, "aioir_config", None))
    if isinstance(config_record, dict):
        config_record.setdefault("overrides", {})["code_projector"] = True
        model.aioir_config = config_record
    seconds = time.perf_counter() - start
    return AlignResult(losses, before, after, seconds, cfg, side, len(targets), len(sources))
