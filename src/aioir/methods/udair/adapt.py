"""Folder CORAL adaptation of UDAIR's distribution adapters (``aioir adapt --method
coral-adapters``): the test-time CORAL objective run once over a folder of unlabelled
target-domain images. Ours: it touches neither the codebook nor its embeddings, so it is *not*
arXiv v1's codebook-alignment domain adaptation, which is
:mod:`aioir.methods.udair.alignment` (``--method codebook``).

Unlike test-time adaptation (:mod:`aioir.methods.udair.tta`, per image, reset afterwards) the three
distribution adapters learn *once* from the whole folder and are saved with the model:

1. every image is assigned a source cluster blindly (:func:`aioir.methods.udair.tta.choose_reference`
   on its working-resolution embedding; ``auto``: the Mahalanobis chooser with a bank that has
   statistics, else nearest centroid), or all to ``task`` when given;
2. the adapters are re-initialised as residual adapters with a zero last layer (the adapted
   model starts as the trained one), the DAM stays in eval mode;
3. each step draws a minibatch of random native-scale crops of the bank's patch size (so the
   target maps have exactly the bank's spatial size, no pooling) and minimises the mean over
   the crops of ``scale · Σ_ℓ CORAL(ref^ℓ_r, A_ℓ(g_ℓ))`` with ``r`` the crop's image cluster
   (AdamW on the adapters only); ``ref`` is the covariance of the task's mean map ``P^ℓ_r``
   (the authors') by default, or the bank's stored within-image covariance with
   ``reference="statistics"`` (:data:`aioir.methods.udair.tta.REFERENCES`) — measured 0.66 dB worse
   on the shipped model's benchmark (docs/decisions.md), so not the default here;
4. :func:`save_adapted` writes a normal saved model (``save_pretrained`` + the source bank) whose
   config builds residual adapters and whose metadata says ``adapters_enabled: true``.

``aioir adapt --model M --target DIR --output OUT [--method coral-adapters]`` runs this from
the command line.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from aioir.data.transforms import random_crop_box
from aioir.errors import ConfigError, DatasetLayoutError

if TYPE_CHECKING:
    from aioir.methods.udair.alignment import AlignResult
from aioir.methods.udair.bank import SourceBank
from aioir.methods.udair.model import UDAIRBase
from aioir.methods.udair.tta import (
    CHOOSERS,
    LEVELS,
    REFERENCES,
    bank_patch_size,
    choose_reference,
    coral_objective,
    only_adapters_trainable,
    raw_maps,
    reinit_adapters,
    resolve_chooser,
    uses_statistics,
    working_image,
)

__all__ = [
    "AdaptConfig",
    "AdaptResult",
    "adapt_to_folder",
    "save_adapted",
]


@dataclasses.dataclass(frozen=True)
class AdaptConfig:
    """Settings of :func:`adapt_to_folder`.

    Args:
        task: assign every image to this bank task (default: blind per image).
        steps: optimiser steps (minibatches).
        lr, weight_decay: AdamW settings.
        batch_size: random crops per step.
        crop: crop side (default: the bank's training patch size).
        chooser: blind cluster choice (see :data:`aioir.methods.udair.tta.CHOOSERS`).
        reference: CORAL reference (:data:`aioir.methods.udair.tta.REFERENCES`; default
            ``"mean_map"``, see the module docstring; ``"auto"``: statistics when present).
        work_size: short side of the image used for the blind choice (as TTA's default).
        loss_scale: factor of the CORAL objective (1e5, UDAIR's).
        seed: seeds the adapter initialisation and the crop sampling.
    """

    task: str | None = None
    steps: int = 200
    lr: float = 1e-3
    weight_decay: float = 0.01
    batch_size: int = 8
    crop: int | None = None
    chooser: str = "auto"
    reference: str = "mean_map"
    work_size: int | None = 256
    loss_scale: float = 1e5
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1:
            raise ConfigError("adapt: steps and batch size must be >= 1")
        if self.lr <= 0:
            raise ConfigError(f"adapt: lr must be > 0, not {self.lr}")
        if self.crop is not None and self.crop < 8:
            raise ConfigError(f"adapt: crop must be >= 8, not {self.crop}")
        if self.chooser not in CHOOSERS:
            raise ConfigError(f"adapt: unknown chooser {self.chooser!r} ({', '.join(CHOOSERS)})")
        if self.reference not in REFERENCES:
            raise ConfigError(
                f"adapt: unknown reference {self.reference!r} ({', '.join(REFERENCES)})"
            )


@dataclasses.dataclass
class AdaptResult:
    """What :func:`adapt_to_folder` did: per-image clusters, loss curve, timing."""

    assignments: dict[str, str]
    losses: list[float]
    initial_loss: float
    final_loss: float
    seconds: float
    config: AdaptConfig
    crop: int = 0
    chooser: str | None = None
    reference: str = "mean_map"

    def summary(self) -> dict[str, Any]:
        """JSON-able record (stored in the saved model's metadata)."""
        counts: dict[str, int] = {}
        for task in self.assignments.values():
            counts[task] = counts.get(task, 0) + 1
        return {
            "method": "coral-adapters",
            "images": len(self.assignments),
            "clusters": counts,
            "blind": self.config.task is None,
            "steps": self.config.steps,
            "lr": self.config.lr,
            "batch_size": self.config.batch_size,
            "crop": self.crop,
            "chooser": self.chooser,
            "reference": self.reference,
            "seed": self.config.seed,
            "initial_loss": self.initial_loss,
            "final_loss": self.final_loss,
            "seconds": round(self.seconds, 2),
        }


def _load_images(images: str | os.PathLike[str] | Sequence[Any]) -> list[tuple[str, Tensor]]:
    """A folder, a list of paths or a list of ``(name, 3×H×W tensor)`` → named tensors."""
    from aioir.io import list_images, load_image

    if isinstance(images, (str, os.PathLike)):
        folder = Path(images)
        if not folder.is_dir():
            raise DatasetLayoutError(f"{folder}: not a folder of target images")
        items: Sequence[Any] = list_images(folder)
    else:
        items = images
    out: list[tuple[str, Tensor]] = []
    for item in items:
        if isinstance(item, tuple):
            name, tensor = item
            out.append((str(name), tensor.float()))
        else:
            data = load_image(item)
            out.append((Path(item).name, torch.from_numpy(data.rgb).permute(2, 0, 1).float()))
    if not out:
        raise DatasetLayoutError(f"{images}: no target images")
    return out


def _at_least(x: Tensor, side: int) -> Tensor:
    """Bicubic-upscale a 3×H×W image whose short side is below ``side`` (aspect kept)."""
    h, w = x.shape[-2:]
    if min(h, w) >= side:
        return x
    scale = side / min(h, w)
    size = (max(side, round(h * scale)), max(side, round(w * scale)))
    up = torch.nn.functional.interpolate(x[None], size=size, mode="bicubic", align_corners=False)
    return up[0].clamp(0.0, 1.0)


def random_square_crop(image: Tensor, side: int, gen: torch.Generator) -> Tensor:
    """A ``side``² crop of a C×H×W ``image`` at a seeded random place."""
    top, left = random_crop_box(image.shape[-2], image.shape[-1], side, gen)
    return image[:, top : top + side, left : left + side]


def _crops(images: list[Tensor], indices: Tensor, side: int, gen: torch.Generator) -> Tensor:
    return torch.stack([random_square_crop(images[i], side, gen) for i in indices.tolist()])


def _batch_loss(
    model: UDAIRBase,
    raw: dict[str, Tensor],
    bank: SourceBank,
    refs: list[int],
    scale: float,
    reference: str = "auto",
) -> Tensor:
    adapters = model.adapters()
    maps = {k: adapters[k](raw[k]) for k in LEVELS}
    terms = [
        coral_objective({k: maps[k][b : b + 1] for k in LEVELS}, bank, r, scale, reference)
        for b, r in enumerate(refs)
    ]
    return torch.stack(terms).mean()


def adapt_to_folder(
    model: nn.Module,
    images: str | os.PathLike[str] | Sequence[Any],
    config: AdaptConfig | None = None,
    *,
    progress: Callable[[int, float], None] | None = None,
) -> AdaptResult:
    """Adapt ``model``'s distribution adapters to a target domain, in place (module docstring).

    ``images``: a folder, image paths, or ``(name, 3×H×W tensor)`` pairs. The model must carry
    its source bank (``model.source_bank``). Afterwards the model is in eval mode with its
    adapters enabled and residual, and its ``aioir_config`` records ``adapter_residual=True``.
    ``progress(step, loss)`` is called after every step.
    """
    cfg = config or AdaptConfig()
    bank = getattr(model, "source_bank", None)
    if bank is None or not isinstance(model, UDAIRBase):
        raise ConfigError(
            "domain adaptation needs a UDAIR model saved with its source bank (bank.safetensors)"
        )
    start = time.perf_counter()
    device = next(model.parameters()).device
    side = cfg.crop or bank_patch_size(bank)
    named = _load_images(images)
    tensors = [_at_least(t, side).to(device) for _, t in named]
    model.eval()
    reference = "statistics" if uses_statistics(bank, cfg.reference) else "mean_map"
    chooser = None
    if cfg.task is not None:
        fixed = bank.task_index(cfg.task)
        refs = [fixed] * len(tensors)
    else:
        chooser = resolve_chooser(cfg.chooser, bank)
        refs = []
        for t in tensors:
            raw = raw_maps(model, working_image(t[None], cfg.work_size, side))
            refs.append(choose_reference(raw, bank, chooser)[0])
    assignments = {name: bank.task_names[r] for (name, _), r in zip(named, refs)}

    gen = torch.Generator().manual_seed(cfg.seed)
    if not getattr(model, "adapters_enabled", False):
        reinit_adapters(model, cfg.seed, residual=True)
    params = only_adapters_trainable(model)
    model.set_adapters(True)
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)

    # a fixed probe batch measures the objective before and after
    probe_idx = torch.arange(len(tensors)).repeat(max(1, cfg.batch_size // len(tensors) + 1))
    probe_idx = probe_idx[: max(cfg.batch_size, len(tensors))]
    probe_gen = torch.Generator().manual_seed(cfg.seed + 1)
    probe = _crops(tensors, probe_idx, side, probe_gen)
    probe_raw = raw_maps(model, probe)
    probe_refs = [refs[i] for i in probe_idx.tolist()]
    with torch.no_grad():
        initial = float(_batch_loss(model, probe_raw, bank, probe_refs, cfg.loss_scale, reference))

    losses: list[float] = []
    try:
        for step in range(cfg.steps):
            idx = torch.randint(0, len(tensors), (cfg.batch_size,), generator=gen)
            raw = raw_maps(model, _crops(tensors, idx, side, gen))
            with torch.enable_grad():
                loss = _batch_loss(
                    model, raw, bank, [refs[i] for i in idx.tolist()], cfg.loss_scale, reference
                )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            losses.append(loss.detach().item())
            if progress is not None:
                progress(step + 1, losses[-1])
    finally:
        for p in model.parameters():
            p.requires_grad_(True)
            p.grad = None
    with torch.no_grad():
        final = float(_batch_loss(model, probe_raw, bank, probe_refs, cfg.loss_scale, reference))
    config = copy.deepcopy(getattr(model, "aioir_config", None))
    if isinstance(config, dict):
        config.setdefault("overrides", {})["adapter_residual"] = True
        model.aioir_config = config
    model.eval()
    seconds = time.perf_counter() - start
    return AdaptResult(assignments, losses, initial, final, seconds, cfg, side, chooser, reference)


def save_adapted(
    model: nn.Module,
    output: str | os.PathLike[str],
    result: AdaptResult | AlignResult | None = None,
    *,
    overwrite: bool = False,
) -> Path:
    """Save an adapted model as a folder (``model.safetensors``, ``config.json``, the bank).

    The metadata keeps the source model's (training record …) and adds ``adapters_enabled:
    true`` (when the adapters are on) and ``domain_adaptation`` (the result's ``summary()``;
    a codebook-aligned model's config builds its code projector); written through
    :func:`aioir.models.save_model` (replaced whole or not at all). Returns the folder.
    """
    from aioir.methods.udair.alignment import AlignResult
    from aioir.models import save_model, unwrap

    if not isinstance(result, AlignResult) and getattr(unwrap(model), "source_bank", None) is None:
        raise ConfigError("save_adapted: the model has no source bank")
    metadata = dict(getattr(model, "aioir_metadata", {}) or {})
    if result is not None:
        metadata["domain_adaptation"] = result.summary()
    return save_model(model, output, metadata=metadata, overwrite=overwrite)
