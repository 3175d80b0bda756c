"""Lightning callbacks of Perceive-IR's training extras (:mod:`.training`).

* :class:`DifficultyProbeCallback` — the per-epoch PSNR probe: fixed crops chosen once, the
  model's mean PSNR on them at each epoch start handed to every loss term that takes it
  (``set_reference_psnr``), logged as ``train/probe_psnr``.
* :class:`QualityPerceiverCallback` — one optimiser step of the three-tier scorer (the
  from-scratch perceiver or CLIP's quality prompts) per training batch, on (input, the
  restorer's current output, target); its weights and optimiser state live in the Lightning
  checkpoint (exact resume).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aioir.methods.perceive_ir.losses import patch_psnr
from aioir.methods.perceive_ir.perceiver import TIERS

__all__ = [
    "DifficultyProbeCallback",
    "QualityPerceiverCallback",
    "select_probe",
    "three_tier_accuracy",
]


def select_probe(
    batches: Iterable[dict[str, Tensor]], per_task: int
) -> list[tuple[Tensor, Tensor]]:
    """``per_task`` crops per task spanning the quantiles of their input PSNR."""
    by_task: dict[int, list[tuple[float, Tensor, Tensor]]] = defaultdict(list)
    for batch in batches:
        scores = patch_psnr(batch["input"], batch["target"])
        for i in range(batch["input"].shape[0]):
            task = int(batch["task_id"][i])
            by_task[task].append((float(scores[i]), batch["input"][i], batch["target"][i]))
    chosen = []
    for task in sorted(by_task):
        items = sorted(by_task[task], key=lambda item: item[0])
        picks = np.linspace(0, len(items) - 1, min(per_task, len(items)))
        chosen += [(items[round(float(p))][1], items[round(float(p))][2]) for p in picks]
    return chosen


class DifficultyProbeCallback(pl.Callback):
    """The model's mean PSNR on a fixed probe at every epoch start (see the module docstring)."""

    def __init__(
        self,
        loader: Callable[[int], Iterable[dict[str, Tensor]]],
        per_task: int = 24,
        candidates: int = 4,
    ) -> None:
        self.loader = loader
        self.per_task = per_task
        self.candidates = candidates
        self.probe: list[tuple[Tensor, Tensor]] | None = None
        self.history: list[float] = []

    def measure(self, model: nn.Module, device: torch.device) -> float:
        """Mean PSNR of ``model`` on the probe (eval mode, no gradients)."""
        if self.probe is None:
            self.probe = select_probe(self.loader(self.per_task * self.candidates), self.per_task)
        was_training = model.training
        model.eval()
        total = 0.0
        with torch.no_grad():
            for low, high in self.probe:
                restored = model(low[None].to(device))
                total += float(patch_psnr(restored, high[None].to(device))[0])
        model.train(was_training)
        return total / max(1, len(self.probe))

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        terms = [t for t in pl_module.loss.terms if hasattr(t, "set_reference_psnr")]
        if not terms:
            return
        value = self.measure(pl_module.model, pl_module.device)
        if trainer.world_size > 1:
            value = float(trainer.strategy.reduce(torch.tensor(value, device=pl_module.device)))
        for term in terms:
            term.set_reference_psnr(value)
        self.history.append(value)
        pl_module.log("train/probe_psnr", value, rank_zero_only=True)
        # Lightning resets the modes after this hook's siblings; keep the frozen parts frozen
        pl_module.train()

    def state_dict(self) -> dict[str, Any]:
        return {"history": list(self.history)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = list(state_dict.get("history", []))


def _triplet(
    low: Tensor, medium: Tensor, high: Tensor, margin_db: float, clean_db: float
) -> tuple[Tensor, Tensor]:
    """Images and tier labels (0 low, 1 medium, 2 high) of one batch; mediums that do not
    beat their input by ``margin_db`` and lows that are clean (≥ ``clean_db``) are left out."""
    psnr_low = patch_psnr(low, high)
    keep_low = psnr_low < clean_db
    keep_mid = (patch_psnr(medium, high) >= psnr_low + margin_db) & keep_low
    images = torch.cat([low[keep_low], medium[keep_mid], high])
    labels = torch.cat(
        [
            torch.zeros(int(keep_low.sum()), dtype=torch.long),
            torch.ones(int(keep_mid.sum()), dtype=torch.long),
            torch.full((high.shape[0],), 2, dtype=torch.long),
        ]
    ).to(low.device)
    return images, labels


def _random_crop(x: Tensor, size: int | None) -> Tensor:
    if size is None or min(x.shape[-2:]) <= size:
        return x
    top = int(torch.randint(0, x.shape[-2] - size + 1, ()).item())
    left = int(torch.randint(0, x.shape[-1] - size + 1, ()).item())
    return x[..., top : top + size, left : left + size]


class QualityPerceiverCallback(pl.Callback):
    """Trains a three-tier quality scorer on every batch (see the module docstring).

    ``module`` holds the trainable parameters (the perceiver, or the prompt learner) and is
    what the checkpoint keeps; ``logits(images)`` gives the ``B×3`` logits (default
    ``module(images)``; CLIP prompts: ``logit_scale × cos``).
    """

    def __init__(
        self,
        module: nn.Module,
        lr: float = 4e-4,
        weight_decay: float = 1e-4,
        start_step: int = 0,
        margin_db: float = 0.5,
        clean_db: float = 45.0,
        crop: int | None = None,
        logits: Callable[[Tensor], Tensor] | None = None,
    ) -> None:
        self.module = module
        self.logits = logits or module
        params = [p for p in module.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
        self.start_step = start_step
        self.margin_db = margin_db
        self.clean_db = clean_db
        self.crop = crop
        self.steps = 0

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if trainer.global_step < self.start_step:
            return
        low, high = batch["input"], batch["target"]
        with torch.no_grad():
            medium = pl_module.model(low).clamp(0, 1)
        images, labels = _triplet(low, medium, high, self.margin_db, self.clean_db)
        images = _random_crop(images, self.crop)
        self.module.to(images.device).train()
        logits = self.logits(images.float())
        loss = F.cross_entropy(logits, labels)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if trainer.world_size > 1:  # one scorer for all processes: average its gradients
            import torch.distributed as dist

            for param in self.module.parameters():
                if param.grad is not None:
                    dist.all_reduce(param.grad)
                    param.grad /= trainer.world_size
        self.optimizer.step()
        self.steps += 1
        accuracy = (logits.argmax(dim=1) == labels).float().mean()
        pl_module.log("train/perceiver_loss", loss.detach(), batch_size=labels.numel())
        pl_module.log("train/perceiver_accuracy", accuracy, batch_size=labels.numel())

    def state_dict(self) -> dict[str, Any]:
        return {
            "module": self.module.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "steps": self.steps,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.module.load_state_dict(state_dict["module"])
        self.optimizer.load_state_dict(state_dict["optimizer"])
        self.steps = int(state_dict.get("steps", 0))


def three_tier_accuracy(
    perceiver: Callable[[Tensor], Tensor],
    restorer: nn.Module,
    batches: Iterable[dict[str, Tensor]],
    max_batches: int,
    margin_db: float = 0.5,
    clean_db: float = 45.0,
) -> dict[str, float]:
    """Accuracy of ``perceiver`` on (input, ``restorer``'s output, target) triplets of up to
    ``max_batches`` held-out batches: overall and per tier (the mediums that beat their input
    by ``margin_db``, the lows below ``clean_db``)."""
    restorer.eval()
    right = torch.zeros(3)
    count = torch.zeros(3)
    with torch.no_grad():
        for i, batch in enumerate(batches):
            if i >= max_batches:
                break
            low, high = batch["input"], batch["target"]
            medium = restorer(low).clamp(0, 1)
            images, labels = _triplet(low, medium, high, margin_db, clean_db)
            predicted = perceiver(images.float()).argmax(dim=1)
            for tier in range(3):
                at = labels == tier
                count[tier] += at.sum()
                right[tier] += (predicted[at] == tier).sum()
    out = {"overall": float(right.sum() / count.sum().clamp_min(1))}
    out.update({name: float(right[i] / count[i].clamp_min(1)) for i, name in enumerate(TIERS)})
    out["count"] = float(count.sum())
    return out
