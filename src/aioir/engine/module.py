"""The one LightningModule for every restoration model (training logic lives only here).

:class:`RestorationModule` builds its network from a :class:`~aioir.engine.config.ModelConfig`
(``aioir.models.create_model``/``load_model``; the network stays a plain ``nn.Module`` under
``self.model``), computes the configured losses (:class:`aioir.losses.CompositeLoss`; models
with ``forward_features`` feed their features to the losses that need them), configures AdamW and
the paper's schedule, and validates with a named metric protocol, logging per-task and mean
PSNR/SSIM, each task's input PSNR and gain over it, and ``val/min_gain`` (the worst task's
gain; ``validation.monitor`` picks the score that selects the best checkpoint). Exact resume:
the global RNG states are stored in the checkpoint (``"rng_states"``) and restored on load.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Mapping, Sequence
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from torch import Tensor, nn

from aioir.engine.config import ModelConfig, OptimizerConfig, SchedulerConfig
from aioir.engine.validation import ValidationScores, summarize_validation
from aioir.errors import ConfigError
from aioir.losses import CompositeLoss, LossInputs
from aioir.nn.memory_format import to_channels_last

__all__ = ["RestorationModule", "WarmupCosine", "build_model", "build_scheduler"]


def build_model(config: ModelConfig, world_size: int = 1) -> nn.Module:
    """The network of ``config`` (registered name + overrides, optional initial weights)."""
    from aioir.models import load_model

    model = load_model(
        config.name, checkpoint=config.checkpoint, strict=config.strict, **config.overrides
    )
    if config.trainable is not None:
        freeze_except(model, config.trainable)
    sync = config.sync_codebook if config.sync_codebook is not None else world_size > 1
    from aioir.nn.quantize import EMAVectorQuantizer

    for m in model.modules():
        if isinstance(m, EMAVectorQuantizer):
            m.sync_distributed = bool(sync)
    return model.train()


def freeze_except(model: nn.Module, prefixes: Sequence[str]) -> None:
    """Train only the parameters whose names start with one of ``prefixes`` (ConfigError when
    a prefix names no parameter)."""
    names = [name for name, _ in model.named_parameters()]
    unmatched = [p for p in prefixes if not any(n.startswith(p) for n in names)]
    if unmatched:
        raise ConfigError(
            f"model.trainable: {unmatched[0]!r} names no parameter of {type(model).__name__}"
        )
    for name, param in model.named_parameters():
        param.requires_grad_(name.startswith(tuple(prefixes)))


def eval_frozen(model: nn.Module) -> None:
    """Put every frozen part of ``model`` into eval mode: each largest submodule that holds
    parameters or buffers, none of them trainable (its dropout, EMA codebooks and running
    statistics then stay as loaded). Parameter-free modules inside trainable parts are left."""

    def visit(module: nn.Module) -> None:
        params = list(module.parameters())
        holds_state = bool(params) or any(True for _ in module.buffers())
        if holds_state and not any(p.requires_grad for p in params):
            module.eval()
            return
        for child in module.children():
            visit(child)

    visit(model)


class WarmupCosine:
    """LR factor: linear warm-up from ``start`` over ``warmup`` units, then cosine to
    ``eta_min_factor`` at ``horizon`` (pl_bolts' ``LinearWarmupCosineAnnealingLR``, which
    PromptIR uses: the factor at unit 0 is ``start``, reaching 1 at ``warmup - 1``)."""

    def __init__(self, warmup: int, horizon: int, start: float = 0.0, eta_min_factor: float = 0.0):
        if horizon <= warmup:
            raise ConfigError(f"scheduler.horizon ({horizon}) must exceed warmup ({warmup})")
        self.warmup, self.horizon = int(warmup), int(horizon)
        self.start, self.eta_min_factor = float(start), float(eta_min_factor)

    def __call__(self, unit: int) -> float:
        if unit < self.warmup:
            if self.warmup == 1:
                return 1.0
            return self.start + unit * (1.0 - self.start) / (self.warmup - 1)
        progress = min(1.0, (unit - self.warmup) / (self.horizon - self.warmup))
        eta = self.eta_min_factor
        return eta + 0.5 * (1.0 - eta) * (1.0 + math.cos(math.pi * progress))


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: SchedulerConfig, lr: float
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """The schedule of ``config`` (``None`` for ``constant``)."""
    if config.name == "constant":
        return None
    if config.name == "cosine_restarts":
        return torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
            optimizer, T_0=config.t_0, T_mult=config.t_mult, eta_min=config.eta_min
        )
    if config.name == "warmup_cosine":
        factor = WarmupCosine(
            config.warmup, config.horizon, config.warmup_start_factor, config.eta_min / lr
        )
        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    raise ConfigError(f"scheduler.name {config.name!r} is unknown")


def _rng_states() -> dict[str, Any]:
    # plain tensors/ints only, so Lightning's weights-only checkpoint load accepts them
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [
            str(kind),
            torch.from_numpy(keys.astype(np.int64)),
            int(pos),
            int(has_gauss),
            float(cached),
        ],
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _set_rng_states(states: Mapping[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    kind, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


class RestorationModule(pl.LightningModule):
    """Train and validate any registered restoration model.

    Args:
        model: which network (see :class:`ModelConfig`).
        losses: ``{name: weight or {weight, **params}}`` (:func:`aioir.losses.parse_loss_specs`).
        optimizer, scheduler: AdamW settings and the LR schedule.
        task_names: task names in task-id order (validation logs one entry per task).
        samples_per_task: ``M`` of task-ordered batches (``None``: batches are not task-ordered;
            CSCL and the ``epoch_mean`` source bank then refuse to run).
        protocol: validation metric protocol name.
        channels_last: feed the network channels-last tensors.
        world_size: number of training processes (> 1: EMA codebooks synchronised by default).
    """

    def __init__(
        self,
        model: ModelConfig,
        losses: Mapping[str, Any],
        optimizer: OptimizerConfig,
        scheduler: SchedulerConfig,
        task_names: Sequence[str],
        samples_per_task: int | None = None,
        protocol: str = "clean",
        channels_last: bool = False,
        world_size: int = 1,
    ) -> None:
        super().__init__()
        from aioir.metrics import get_protocol

        self.model = build_model(model, world_size)
        if channels_last:  # 4-D weights only: PromptIR's prompt banks are 5-D
            to_channels_last(self.model)
        self.loss = CompositeLoss(dict(losses))
        self.loss.check_tasks(task_names)
        self.optimizer_config = optimizer
        self.scheduler_config = scheduler
        self.task_names = list(task_names)
        self.samples_per_task = samples_per_task
        self.protocol = get_protocol(protocol)
        self.channels_last = channels_last
        #: return the model's ``forward_features`` output as ``"features"`` from every training
        #: step, for callbacks (set when a training extra asks: :mod:`aioir.engine.extras`)
        self.keep_features = False
        self._val: ValidationScores | None = None
        #: validation results, one dict per validation run (rank-0 view, all ranks reduced)
        self.val_history: list[dict[str, float]] = []
        self._batch_digest = hashlib.sha256()
        self._batches_seen = 0
        if self.loss.needs_features and not hasattr(self.model, "forward_features"):
            raise ConfigError(
                f"losses {[s.name for s in self.loss.specs]} need forward_features, which "
                f"{type(self.model).__name__} does not have"
            )

    def train(self, mode: bool = True) -> RestorationModule:
        """Train mode, except for frozen parts (``model.trainable``): a submodule without a
        trainable parameter stays in eval mode, so its dropout is off and its EMA codebooks and
        normalisation statistics do not drift."""
        super().train(mode)
        if mode:
            eval_frozen(self.model)
        return self

    def on_train_start(self) -> None:
        # Lightning keeps the modes it finds (and restores them after validation): set them here
        self.train()

    # ------------------------------------------------------------------ forward
    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

    def _input(self, x: Tensor) -> Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def _task_groups(self, task_id: Tensor) -> tuple[int, int]:
        t, m = len(self.task_names), self.samples_per_task
        if m is None or task_id.numel() != t * m:
            raise ConfigError(
                "losses on features (e.g. cscl) and training extras that collect them (e.g. "
                "source_bank.mode: epoch_mean) need task-ordered batches "
                "(data.sampler: task_balanced)"
            )
        expected = torch.arange(t, device=task_id.device).repeat_interleave(m)
        if not torch.equal(task_id.to(expected.dtype), expected):
            raise ConfigError(f"batch is not task-ordered: task ids {task_id.tolist()}")
        return t, m

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> Any:
        x, y = self._input(batch["input"]), batch["target"]
        if "index" in batch:
            self._batch_digest.update(batch["index"].cpu().numpy().tobytes())
        self._batches_seen += 1
        features = scale = out = None
        t, m = len(self.task_names), 1
        if self.loss.needs_features or self.keep_features:
            t, m = self._task_groups(batch["task_id"])
            out = self.model.forward_features(x)
            pred, features, scale = out.image, out.feature, out.logit_scale
        else:
            pred = self.model(x)
        inputs = LossInputs(
            pred, y, features, scale, t, m, task_ids=batch.get("task_id"),
            task_names=self.task_names, batch=batch, outputs=out, model=self.model,
        )  # fmt: skip
        total, logs = self.loss(inputs)
        bs = x.shape[0]
        self.log("train/loss", total.detach(), prog_bar=True, batch_size=bs)
        for k, v in logs.items():
            self.log(f"train/{k}", v, batch_size=bs)
        self.log("train/lr", self.optimizers().param_groups[0]["lr"], batch_size=bs)
        if self.keep_features:
            return {"loss": total, "features": out}
        return total

    # ------------------------------------------------------------------ validation
    def on_validation_epoch_start(self) -> None:
        # accumulated on the CPU (per-image scalars); moved to the device once, to reduce
        self._val = ValidationScores(len(self.task_names), self.protocol)

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        pred = self.model(self._input(batch["input"]))
        assert self._val is not None
        self._val.add(pred, batch["target"], batch["input"], batch["task_id"])

    def on_validation_epoch_end(self) -> None:
        assert self._val is not None
        sums = self.trainer.strategy.reduce(self._val.sums.to(self.device), reduce_op="sum")
        result = summarize_validation(sums, self.task_names)
        if not result:
            return
        for k, v in result.items():
            self.log(k, v, prog_bar=k == "val/psnr", sync_dist=False, rank_zero_only=False)
        if not self.trainer.sanity_checking:
            self.val_history.append({"step": self.global_step, **result})

    # ------------------------------------------------------------------ optimisation
    def configure_optimizers(self) -> Any:
        cfg = self.optimizer_config
        params = [p for p in self.model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(
            params, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, weight_decay=cfg.weight_decay
        )
        sched = build_scheduler(opt, self.scheduler_config, cfg.lr)
        if sched is None:
            return opt
        return {
            "optimizer": opt,
            "lr_scheduler": {
                "scheduler": sched,
                "interval": self.scheduler_config.unit,
                "frequency": 1,
            },
        }

    # ------------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["rng_states"] = _rng_states()
        checkpoint["val_history"] = list(self.val_history)
        checkpoint["aioir_model"] = dict(getattr(self.model, "aioir_config", {}))

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if "rng_states" in checkpoint:
            _set_rng_states(checkpoint["rng_states"])
        self.val_history = list(checkpoint.get("val_history", []))

    def batch_digest(self) -> str:
        """SHA-256 of the sample indices this process trained on (DDP sharding checks)."""
        return self._batch_digest.hexdigest()
