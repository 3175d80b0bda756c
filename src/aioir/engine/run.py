"""Run a training from a :class:`~aioir.engine.config.TrainConfig` (what ``aioir train`` calls).

``OUTPUT/`` receives ``config.yaml`` (the resolved config), ``checkpoints/{best,last}.ckpt``,
``logs/`` (TensorBoard, or CSV when tensorboard is missing) and, at the end, ``export/`` with
``model.safetensors`` + ``config.json`` (:func:`aioir.models.save_pretrained`; EMA weights when
EMA is on), the artefacts of the run's training extras (e.g. a source bank) and
``training.json`` (data, steps, wall time, val metrics, DDP checks).
"""

from __future__ import annotations

import dataclasses
import json
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from aioir.engine.config import TrainConfig, config_to_dict
from aioir.engine.extras import TrainingExtra
from aioir.errors import CheckpointError, ConfigError
from aioir.io import write_bytes_atomically

__all__ = ["TrainResult", "build_trainer", "export_run", "resolve_resume", "train"]

#: Stem of the latest-state checkpoint that ``resume="auto"`` continues from.
LAST_CHECKPOINT = "last"


@dataclasses.dataclass
class TrainResult:
    """Where things went and what came out."""

    output: Path
    best_checkpoint: Path | None
    last_checkpoint: Path | None
    export_dir: Path | None
    steps: int
    val_history: list[dict[str, float]]
    record: dict[str, Any]


def resolve_resume(resume: str | None, output: Path) -> Path | None:
    """``None``; ``"auto"`` (``OUTPUT/checkpoints/last.ckpt`` if present); or a path."""
    if resume is None:
        return None
    if resume == "auto":
        last = output / "checkpoints" / f"{LAST_CHECKPOINT}.ckpt"
        return last if last.is_file() else None
    p = Path(resume)
    if not p.is_file():
        raise CheckpointError(f"{p}: checkpoint to resume from does not exist")
    return p


def _best_row(history: list[dict[str, float]], monitor: str) -> dict[str, float]:
    """The validation record with the highest ``monitor`` (the first of equals, as Lightning)."""
    return max(history, key=lambda r: r.get(monitor, float("-inf")))


def _precision(config: TrainConfig, accelerator: str) -> str:
    p = config.trainer.precision
    if p != "auto":
        return "32-true" if p == "32" else p
    if accelerator == "gpu" or (accelerator == "auto" and torch.cuda.is_available()):
        return (
            "bf16-mixed"
            if torch.cuda.is_available() and torch.cuda.is_bf16_supported()
            else "16-mixed"
        )
    return "32-true"


def _logger(config: TrainConfig, output: Path) -> Any:
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    kind = config.trainer.logger
    if kind == "none":
        return False
    if kind in ("auto", "tensorboard"):
        try:
            import tensorboard  # noqa: F401

            return TensorBoardLogger(str(output), name="logs")
        except ImportError:
            if kind == "tensorboard":
                raise ConfigError("trainer.logger: tensorboard is not installed") from None
    return CSVLogger(str(output), name="logs")


def build_trainer(
    config: TrainConfig, output: Path, datamodule: Any, *, callbacks: list[Any] | None = None
) -> Any:
    """The Lightning ``Trainer`` of ``config`` (checkpoints best-by-val + the latest state)."""
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import ModelCheckpoint, TQDMProgressBar

    from aioir.engine.callbacks import LatestCheckpoint

    t = config.trainer
    # `best` is written when a validation ends, never on the step cadence: a step-cadence save
    # runs before that step's validation and would pair step N's weights with the score of the
    # validation before it (runs 24–25 on the v4 configs, docs/history.md).
    best = ModelCheckpoint(
        dirpath=str(output / "checkpoints"),
        filename="best",
        monitor=f"val/{config.validation.monitor}",
        mode="max",
        save_top_k=1,
        save_on_train_epoch_end=False,
        auto_insert_metric_name=False,
        enable_version_counter=False,
    )
    # `save_last=True` on the callback above writes last.ckpt only when `best` improves, so a run
    # killed after a plateau would resume from its last improvement: the latest state gets its
    # own callback (every validation, or every `checkpoint_every_n_steps`).
    latest = LatestCheckpoint(output / "checkpoints", LAST_CHECKPOINT, t.checkpoint_every_n_steps)
    cbs: list[Any] = [best, latest, *(callbacks or [])]
    if t.progress_bar:
        cbs.append(TQDMProgressBar(refresh_rate=max(1, min(20, t.log_every_n_steps))))
    strategy: Any = t.strategy
    multi = (isinstance(t.devices, int) and t.devices > 1) or t.num_nodes > 1
    if (strategy == "auto" and multi) or strategy == "ddp":
        from lightning.pytorch.strategies import DDPStrategy

        # some parameters may get no gradient (parity-only layers, test-time adapters)
        strategy = DDPStrategy(find_unused_parameters=True)
    val_kwargs: dict[str, Any] = {"check_val_every_n_epoch": t.val_every_n_epochs}
    if t.val_every_n_steps:
        val_kwargs = {"val_check_interval": t.val_every_n_steps, "check_val_every_n_epoch": None}
    return pl.Trainer(
        default_root_dir=str(output),
        max_steps=t.max_steps,
        max_epochs=t.max_epochs if t.max_epochs is not None else -1,
        max_time=t.max_time,
        accelerator=t.accelerator,
        devices=t.devices,
        num_nodes=t.num_nodes,
        strategy=strategy,
        precision=_precision(config, t.accelerator),
        gradient_clip_val=t.grad_clip,
        accumulate_grad_batches=t.accumulate,
        logger=_logger(config, output),
        log_every_n_steps=t.log_every_n_steps,
        callbacks=cbs,
        enable_progress_bar=t.progress_bar,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        use_distributed_sampler=False,
        deterministic=t.deterministic,
        **val_kwargs,
    )


def build_extras(
    config: TrainConfig, model: torch.nn.Module, datamodule: Any
) -> list[TrainingExtra]:
    """The registered training extras that apply to this run (:mod:`aioir.engine.extras`)."""
    from aioir.engine.extras import TrainingContext, get_training_extra

    extras = []
    for name, section in config.extras.items():
        spec = get_training_extra(name)
        if spec is None:
            continue
        ctx = TrainingContext(config, section, model, datamodule, list(datamodule.task_names))
        extra = spec.build(ctx)
        if extra is not None:
            extras.append(extra)
    return extras


def train(
    config: TrainConfig,
    output: str | Path,
    *,
    resume: str | None = None,
    export: bool = True,
) -> TrainResult:
    """Train as ``config`` says, writing everything under ``output`` (see the module docstring)."""
    import lightning.pytorch as pl
    import yaml

    from aioir.engine.callbacks import EMACallback
    from aioir.engine.datamodule import RestorationDataModule
    from aioir.engine.module import RestorationModule

    t = config.trainer
    if t.num_threads:
        torch.set_num_threads(int(t.num_threads))
    output = Path(output)
    ckpt_path = resolve_resume(resume, output)
    pl.seed_everything(t.seed, workers=True, verbose=False)
    dm = RestorationDataModule(config.data, config.data_root(), seed=t.seed)
    world = (t.devices if isinstance(t.devices, int) else 1) * t.num_nodes
    module = RestorationModule(
        config.model, config.losses, config.optimizer, config.scheduler, dm.task_names,
        dm.samples_per_task, config.validation.protocol, t.channels_last, world,
    )  # fmt: skip
    dm.setup("fit")  # dataset layout errors surface here (Lightning's own call is then a no-op)
    # the output folder is made only once data, model and losses are known to be valid
    output.mkdir(parents=True, exist_ok=True)
    resolved = yaml.safe_dump(config_to_dict(config), sort_keys=False)
    write_bytes_atomically(output / "config.yaml", resolved.encode(), overwrite=True)
    callbacks: list[Any] = []
    ema = EMACallback(config.ema.decay) if config.ema.enabled else None
    if ema is not None:
        callbacks.append(ema)
    extras = build_extras(config, module.model, dm)
    for extra in extras:
        callbacks.extend(extra.callbacks())
    module.keep_features = any(extra.wants_features for extra in extras)
    trainer = build_trainer(config, output, dm, callbacks=callbacks)
    last_path = output / "checkpoints" / f"{LAST_CHECKPOINT}.ckpt"
    start = time.perf_counter()
    with warnings.catch_warnings():
        # the sampler position is restored by RestorationDataModule.load_state_dict
        warnings.filterwarnings("ignore", message=".*your dataloader is not resumable.*")
        trainer.fit(module, datamodule=dm, ckpt_path=str(ckpt_path) if ckpt_path else None)
    wall = time.perf_counter() - start
    latest = next(cb for cb in trainer.checkpoint_callbacks if cb.monitor is None)
    if trainer.global_step > 0 and (
        not last_path.is_file() or latest._last_global_step_saved != trainer.global_step
    ):
        trainer.save_checkpoint(last_path)  # the final state (periodic saves may be older)

    ddp = _ddp_record(trainer, module)
    ckpt_cb = trainer.checkpoint_callback
    best = Path(ckpt_cb.best_model_path) if ckpt_cb and ckpt_cb.best_model_path else None
    last = last_path if last_path.is_file() else None
    record: dict[str, Any] = {
        "description": config.description,
        "data": dm.describe(),
        "steps": int(trainer.global_step),
        "epochs": int(trainer.current_epoch),
        "wall_time_s": round(wall, 2),
        "resumed_from": _in_run(ckpt_path, output) if ckpt_path else None,
        "protocol": module.protocol.header(),
        "val_history": module.val_history,
        "best_checkpoint": _in_run(best, output) if best else None,
        "monitor": ckpt_cb.monitor if ckpt_cb else None,
        "best_val_score": float(ckpt_cb.best_model_score)
        if ckpt_cb and ckpt_cb.best_model_score is not None
        else None,
        "best_val_psnr": _best_row(module.val_history, ckpt_cb.monitor).get("val/psnr")
        if ckpt_cb and module.val_history
        else None,
        "precision": str(trainer.precision),
        "world_size": int(trainer.world_size),
        "ddp": ddp,
    }
    export_dir = None
    if trainer.is_global_zero:
        if export:
            export_dir = export_run(config, output, best or last, dm, record, extras)
        text = json.dumps(record, indent=2) + "\n"
        write_bytes_atomically(output / "training.json", text.encode(), overwrite=True)
    _close_distributed(trainer)
    return TrainResult(
        output, best, last, export_dir, int(trainer.global_step), module.val_history, record
    )


def _in_run(path: Path | str, output: Path) -> str:
    """``path`` as the record names it: relative to the run folder when inside it (a record
    that travels with its weights names no machine's folders), else as given."""
    path = Path(path)
    try:
        return path.resolve().relative_to(output.resolve()).as_posix()
    except ValueError:
        return str(path)


def _close_distributed(trainer: Any) -> None:
    """Under DDP, wait until rank 0 has exported, then close the process group on every rank.

    Otherwise the other ranks return at once and tear the group down at interpreter exit while
    rank 0 is still exporting; in 2 of about 15 full test runs a rank then aborted at exit
    ("terminate called without an active exception") and the launcher failed the whole run.
    """
    import torch.distributed as dist

    if trainer.world_size > 1 and dist.is_available() and dist.is_initialized():
        trainer.strategy.barrier("aioir-train-end")
        dist.destroy_process_group()


def _ddp_record(trainer: Any, module: Any) -> dict[str, Any]:
    """Per-rank batch counts and sample digests, and whether the weights ended identical."""
    strategy = trainer.strategy
    with torch.no_grad():
        flat = torch.cat([p.detach().float().flatten() for p in module.model.parameters()])
        checksum = torch.stack([flat.sum(), flat.abs().sum(), (flat * flat).sum()]).double()
    digest = bytes.fromhex(module.batch_digest())
    local = torch.tensor(
        [float(module._batches_seen), *checksum.tolist(), *[float(b) for b in digest[:8]]],
        dtype=torch.float64,
        device=strategy.root_device,
    )
    if trainer.world_size > 1:
        gathered = strategy.all_gather(local).cpu()
    else:
        gathered = local.cpu()[None]
    ranks = [
        {
            "rank": i,
            "batches": int(row[0]),
            "digest": bytes(int(b) for b in row[4:]).hex(),
            "checksum": [float(v) for v in row[1:4]],
        }
        for i, row in enumerate(gathered)
    ]
    same = all(r["checksum"] == ranks[0]["checksum"] for r in ranks)
    return {"ranks": ranks, "weights_in_sync": same}


def _load_best_model(config: TrainConfig, ckpt: dict[str, Any]) -> tuple[torch.nn.Module, bool]:
    """The network with a loaded checkpoint's weights (EMA weights when it has them)."""
    from aioir.engine.module import build_model
    from aioir.models.checkpoints import EMA_KEY, state_dict_of

    state = state_dict_of(ckpt, "the best checkpoint")
    used_ema = EMA_KEY in ckpt
    model = build_model(dataclasses.replace(config.model, checkpoint=None, sync_codebook=False))
    model.load_state_dict(state)
    return model.eval(), used_ema


def export_run(
    config: TrainConfig,
    output: Path,
    checkpoint: Path | None,
    datamodule: Any,
    record: dict[str, Any],
    extras: Sequence[TrainingExtra] = (),
) -> Path | None:
    """Write ``OUTPUT/export`` with :func:`aioir.models.save_model`: the best weights (EMA if
    any), the artefacts the training extras attach (e.g. a source bank) and training.json."""
    from aioir.models import save_model

    if checkpoint is None:
        return None
    export_dir = output / "export"
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=False)
    model, used_ema = _load_best_model(config, ckpt)
    record["exported_checkpoint"] = _in_run(checkpoint, output)
    record["exported_ema"] = used_ema
    for extra in extras:
        extra.export(model, ckpt, record)
    metadata = {
        "training": {k: v for k, v in record.items() if k not in ("val_history", "ddp")},
        "val": _best_row(record["val_history"], record.get("monitor") or "val/psnr")
        if record["val_history"]
        else None,
        "task_names": list(datamodule.task_names),
    }
    training = json.dumps(record, indent=2, default=str) + "\n"
    return save_model(
        model,
        export_dir,
        metadata=metadata,
        files={"training.json": training.encode()},
        overwrite=True,
    )
