"""Training configuration: YAML → validated dataclasses (no code runs at load time).

A config file has the sections of :class:`TrainConfig`; every key is checked, and an unknown
or mistyped key raises :class:`~aioir.errors.ConfigError` naming the file and the dotted key.
``overrides`` (``["data.root=/x", "trainer.max_steps=5"]``, the CLI's ``--set``) are applied to
the raw mapping first; values are parsed as YAML (``5`` is an int, ``[1, 2]`` a list,
``null`` None).

Nothing is *built* here: :mod:`aioir.engine.run` constructs the model, data and trainer from
the returned :class:`TrainConfig`.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, Union

from aioir.errors import ConfigError

__all__ = [
    "DATA_ROOT_ENV",
    "DataConfig",
    "EMAConfig",
    "ModelConfig",
    "OptimizerConfig",
    "SchedulerConfig",
    "TrainConfig",
    "TrainerConfig",
    "ValidationConfig",
    "apply_overrides",
    "build_config",
    "config_from_dict",
    "config_to_dict",
    "load_config",
    "merge_sections",
    "read_yaml",
]

T = TypeVar("T")

#: Environment variable giving ``data.root`` when the config leaves it empty.
DATA_ROOT_ENV = "AIOIR_DATA_ROOT"

DATA_KINDS = ("synthetic", "promptir-3task", "promptir-5task", "udair")


@dataclasses.dataclass
class ModelConfig:
    """Which network to train.

    ``name``: a registered model (``udair-tiny``, ``promptir``, …) or a saved-model folder
    (e.g. a fitted filter-bank model, to fine-tune its head with ``trainable: [filter_bank]``);
    ``overrides``: constructor arguments replacing the preset's; ``checkpoint``: initial
    weights of a registered model (fine-tuning); ``strict``: the checkpoint must fit every key
    (``False``: keys it lacks keep their initialisation; shapes must still match);
    ``trainable``: parameter-name prefixes to train, the rest frozen (``None`` = all);
    ``sync_codebook``: all-reduce UDAIR's EMA codebook statistics across DDP ranks (``None`` =
    yes when training on more than one process; ``False`` = per rank).
    """

    name: str = "udair-tiny"
    overrides: dict[str, Any] = dataclasses.field(default_factory=dict)
    checkpoint: str | None = None
    strict: bool = True
    trainable: list[str] | None = None
    sync_codebook: bool | None = None


#: the data options that change a clean patch before it is degraded, each in [0, 1]
#: (:class:`~aioir.data.synthetic.SyntheticDegradationDataset`'s keywords of the same names)
CLEAN_PATCH_JITTERS = (
    "photometric", "white_balance", "pale", "dark", "defocus", "high_key", "low_key", "grey",
)  # fmt: skip


@dataclasses.dataclass
class DataConfig:
    """Training/validation data (see :mod:`aioir.engine.datamodule`)."""

    kind: str = "synthetic"
    root: str | None = None
    tasks: Any = None
    patch_size: int = 128
    severity: Any = "random"
    sampler: str = "task_balanced"
    samples_per_task: int = 2
    batch_size: int = 8
    items_per_task: int | None = None
    epoch_length: int | None = None
    augment: str = "d8"
    photometric: float = 0.0  # synthetic data: exposure/contrast/saturation jitter (0–1)
    white_balance: float = 0.0  # synthetic data: colour temperature/tint jitter (0–1)
    pale: float = 0.0  # synthetic data: probability of a pale, flat rendering of the clean patch
    dark: float = 0.0  # synthetic data: probability of a dim rendering of the patch
    defocus: float = 0.0  # synthetic data: probability of an out-of-focus rendering of the patch
    high_key: float = 0.0  # synthetic data: probability of a bright, near-white rendering
    low_key: float = 0.0  # synthetic data: probability of a dark rendering, highlights kept
    grey: float = 0.0  # synthetic data: probability of a black-and-white patch (input and target)
    #: synthetic training data: degradation CutMix (regions of other tasks pasted into each
    #: patch; the batch carries ``label_map``, 0 = clean, task id + 1 elsewhere)
    cutmix: bool = False
    repeats: dict[str, int] = dataclasses.field(default_factory=dict)
    noise_sigmas: list[float] = dataclasses.field(default_factory=lambda: [15.0, 25.0, 50.0])
    val_items_per_task: int = 4
    val_fraction: float = 0.05
    val_split: str = "holdout"
    val_mode: str = "center_crop"
    val_size: int | None = 128
    val_batch_size: int = 8
    val_seed: int = 0  # validation items and hold-out splits: fixed, independent of trainer.seed
    num_workers: int = 0

    def validate(self, where: str = "config") -> DataConfig:
        """Check values that types alone do not; returns ``self``."""

        def bad(key: str, msg: str) -> ConfigError:
            return ConfigError(f"{where}: data.{key}: {msg}")

        if self.kind not in DATA_KINDS:
            raise bad("kind", f"{self.kind!r} is unknown; expected one of {', '.join(DATA_KINDS)}")
        if self.sampler not in ("task_balanced", "random"):
            raise bad("sampler", "expected 'task_balanced' or 'random'")
        if self.augment not in ("d8", "udair", "none"):
            raise bad("augment", "expected 'd8', 'udair' or 'none'")
        for key in CLEAN_PATCH_JITTERS:
            if not 0.0 <= float(getattr(self, key)) <= 1.0:
                raise bad(key, "expected a value in [0, 1]")
        if self.cutmix and self.kind != "synthetic":
            raise bad("cutmix", "degradation CutMix needs kind synthetic")
        if self.val_mode not in ("center_crop", "resize", "full"):
            raise bad("val_mode", "expected 'center_crop', 'resize' or 'full'")
        if self.val_split not in ("holdout", "val"):
            raise bad("val_split", "expected 'holdout' or 'val'")
        if not 0.0 < self.val_fraction < 1.0:
            raise bad("val_fraction", "must lie in (0, 1)")
        for key in ("patch_size", "samples_per_task", "batch_size", "val_batch_size"):
            if getattr(self, key) < 1:
                raise bad(key, "must be ≥ 1")
        return self

    def clean_patch_jitters(self) -> dict[str, float]:
        """``{option: value}`` of :data:`CLEAN_PATCH_JITTERS`, as the synthetic dataset takes them."""
        return {key: float(getattr(self, key)) for key in CLEAN_PATCH_JITTERS}

    def resolved_root(self) -> Path:
        """``root``, else ``$AIOIR_DATA_ROOT`` (ConfigError if neither is set)."""
        root = self.root or os.environ.get(DATA_ROOT_ENV)
        if not root:
            raise ConfigError(
                f"data.root is not set: give it in the config, with --set data.root=DIR "
                f"or in ${DATA_ROOT_ENV}"
            )
        return Path(root).expanduser()


@dataclasses.dataclass
class OptimizerConfig:
    """AdamW (the only optimiser the papers use)."""

    name: str = "adamw"
    lr: float = 1e-4
    betas: list[float] = dataclasses.field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    weight_decay: float = 0.01


@dataclasses.dataclass
class SchedulerConfig:
    """Learning-rate schedule.

    ``name``: ``constant``; ``cosine_restarts`` (UDAIR: ``t_0``, ``t_mult``, ``eta_min``);
    ``warmup_cosine`` (PromptIR: linear warm-up for ``warmup`` units from
    ``warmup_start_factor·lr``, then cosine to ``eta_min`` at ``horizon``). ``unit``: ``epoch``
    (stepped after every epoch, as both papers) or ``step``.
    """

    name: str = "constant"
    unit: str = "epoch"
    t_0: int = 15
    t_mult: int = 2
    eta_min: float = 0.0
    warmup: int = 15
    horizon: int = 150
    warmup_start_factor: float = 0.0


@dataclasses.dataclass
class TrainerConfig:
    """Loop, precision, devices, logging and checkpoint cadence."""

    seed: int = 123
    max_steps: int = -1
    max_epochs: int | None = None
    max_time: str | None = None  # wall-clock budget "DD:HH:MM:SS"; stops cleanly, then exports
    val_every_n_steps: int | None = None
    val_every_n_epochs: int = 1
    checkpoint_every_n_steps: int | None = None
    precision: str = "auto"
    grad_clip: float | None = None
    accumulate: int = 1
    accelerator: str = "auto"
    devices: Any = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    num_threads: int | None = None
    logger: str = "auto"
    log_every_n_steps: int = 50
    progress_bar: bool = True
    channels_last: bool = False
    deterministic: bool = False


@dataclasses.dataclass
class EMAConfig:
    """Exponential moving average of the weights (validation and export use it when enabled)."""

    enabled: bool = False
    decay: float = 0.999


#: The validation scores that can pick the best checkpoint (``validation.monitor``).
VAL_MONITORS = ("psnr", "ssim", "min_gain", "mean_gain", "floored_gain")
#: The precisions of the fits run outside Lightning (a head's classifier and its validation):
#: float32, or bfloat16 autocast (emulated, several times slower, on CPUs without native bf16)
PLAIN_LOOP_PRECISIONS = ("bf16-mixed", "32")


@dataclasses.dataclass
class ValidationConfig:
    """How validation scores and which score picks ``best.ckpt`` (and so the exported weights).

    ``protocol``: the metric protocol (``aioir.metrics.get_protocol``). ``monitor``: ``psnr``
    (mean PSNR over the tasks), ``ssim`` (mean SSIM) or ``min_gain`` (the worst task's PSNR gain
    over its own degraded input, identity tasks such as ``clean`` left out): the quality bar of a
    blind all-in-one model, which must leave no task worse than it came in; ``mean_gain`` (the
    mean gain over the input) or ``floored_gain`` (the mean gain minus every dB a task falls under
    its floor: 0 dB of gain, 40 dB PSNR for an identity task — ``aioir.engine.validation``).
    """

    protocol: str = "clean"
    monitor: str = "psnr"


@dataclasses.dataclass
class TrainConfig:
    """A whole training run."""

    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    losses: dict[str, Any] = dataclasses.field(default_factory=lambda: {"l1": 1.0})
    optimizer: OptimizerConfig = dataclasses.field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = dataclasses.field(default_factory=SchedulerConfig)
    trainer: TrainerConfig = dataclasses.field(default_factory=TrainerConfig)
    ema: EMAConfig = dataclasses.field(default_factory=EMAConfig)
    validation: ValidationConfig = dataclasses.field(default_factory=ValidationConfig)
    description: str = ""
    #: the sections of the registered training extras (:mod:`aioir.engine.extras`), by name:
    #: top-level keys of the file like the sections above, e.g. UDAIR's ``source_bank``
    extras: dict[str, Any] = dataclasses.field(default_factory=dict, metadata={"section": False})

    def validate(self, where: str = "config") -> TrainConfig:
        """Check values that types alone do not; returns ``self``."""
        d, t, s = self.data, self.trainer, self.scheduler

        def bad(key: str, msg: str) -> ConfigError:
            return ConfigError(f"{where}: {key}: {msg}")

        d.validate(where)
        if s.name not in ("constant", "cosine_restarts", "warmup_cosine"):
            raise bad("scheduler.name", "expected 'constant', 'cosine_restarts' or 'warmup_cosine'")
        if s.unit not in ("epoch", "step"):
            raise bad("scheduler.unit", "expected 'epoch' or 'step'")
        if self.optimizer.name != "adamw":
            raise bad("optimizer.name", "only 'adamw' is supported")
        if len(self.optimizer.betas) != 2:
            raise bad("optimizer.betas", "expected two numbers")
        if t.precision not in ("auto", "32", "32-true", "bf16-mixed", "16-mixed", "bf16-true"):
            raise bad("trainer.precision", "expected auto, 32, bf16-mixed, 16-mixed or bf16-true")
        if t.logger not in ("auto", "csv", "tensorboard", "none"):
            raise bad("trainer.logger", "expected auto, csv, tensorboard or none")
        if t.max_steps == 0 or t.max_steps < -1:
            raise bad(
                "trainer.max_steps",
                "expected -1 (no limit) or a step count (a filter bank is fitted without "
                "training: aioir fit-filter-bank)",
            )
        if t.max_steps == -1 and t.max_epochs is None:
            raise bad("trainer", "set max_steps or max_epochs")
        for name, section in self.extras.items():
            check = getattr(section, "validate", None)
            if check is not None:
                check(f"{where}: {name}")
        if not 0.0 < self.ema.decay < 1.0:
            raise bad("ema.decay", "must lie in (0, 1)")
        from aioir.losses import parse_loss_specs
        from aioir.metrics import get_protocol

        parse_loss_specs(self.losses, f"{where}: losses")
        get_protocol(self.validation.protocol)
        if self.validation.monitor not in VAL_MONITORS:
            raise bad("validation.monitor", f"expected one of {', '.join(VAL_MONITORS)}")
        return self

    def data_root(self) -> Path:
        """``data.root``, else ``$AIOIR_DATA_ROOT`` (ConfigError if neither is set)."""
        return self.data.resolved_root()


# ------------------------------------------------------------------------------ loading
def _type_ok(value: Any, tp: Any) -> bool:
    if tp is Any:
        return True
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return any(_type_ok(value, a) for a in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    if origin is dict:
        return isinstance(value, Mapping)
    if origin is list:
        (inner,) = typing.get_args(tp)
        return (
            isinstance(value, Sequence)
            and not isinstance(value, str)
            and all(_type_ok(v, inner) for v in value)
        )
    return True


def _build(cls: type, raw: Any, where: str, prefix: str, more_keys: Sequence[str] = ()) -> Any:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: {prefix or 'config'}: expected a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if key not in fields or fields[key].metadata.get("section") is False:
            known = [n for n, f in fields.items() if f.metadata.get("section") is not False]
            raise ConfigError(
                f"{where}: unknown key '{dotted}' (known: {', '.join(sorted([*known, *more_keys]))})"
            )
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            kwargs[key] = _build(tp, value if value is not None else {}, where, dotted)
            continue
        if not _type_ok(value, tp):
            raise ConfigError(f"{where}: '{dotted}' has a wrong type: {value!r}")
        if tp is float or tp == (float | None):
            value = float(value) if value is not None else None
        kwargs[key] = value
    return cls(**kwargs)


#: YAML 1.2's floats: PyYAML (YAML 1.1) reads ``1e-3`` -- no dot -- as a string
_YAML12_FLOAT = r"""^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"""


@functools.cache
def _yaml_loader() -> type:
    """A safe YAML loader that reads numbers as YAML 1.2 does (``1e-3`` is a float)."""
    import re

    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:float"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:float", re.compile(_YAML12_FLOAT), list("-+0123456789.")
    )
    return Loader


def load_yaml(text: str) -> Any:
    """Parse YAML text safely, numbers as YAML 1.2 reads them (``lr: 1e-3`` is a float)."""
    import yaml

    return yaml.load(text, Loader=_yaml_loader())  # a SafeLoader subclass: safe


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``key.path=value`` strings (values parsed as YAML) to a nested mapping, in place."""
    import yaml

    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected key.path=value")
        try:
            value = load_yaml(text) if text.strip() else None
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {item!r}: value is not valid YAML ({exc})") from None
        node = raw
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"--set {item!r}: '{part}' is not a section")
            node = child
        node[parts[-1]] = value
    return raw


def config_from_dict(
    raw: Mapping[str, Any], where: str = "config", overrides: Sequence[str] = ()
) -> TrainConfig:
    """Build and validate a :class:`TrainConfig` from a mapping (+ ``--set`` overrides).

    A ``model.name`` override without a ``description`` one appends ``[model.name set to
    NAME]`` to the description, so a recipe run with another network does not export the
    recipe's wording for it (the description names the model in ``aioir models``)."""
    import copy

    from aioir.engine.extras import list_training_extras

    data = copy.deepcopy(dict(raw))
    apply_overrides(data, overrides)
    extras: dict[str, Any] = {}
    for spec in list_training_extras():
        section = data.pop(spec.section, None)
        extras[spec.section] = _build(
            spec.config_type, section if section is not None else {}, where, spec.section
        )
    config = _build(TrainConfig, data, where, "", more_keys=list(extras))
    config.extras = extras
    overridden = {item.partition("=")[0].strip() for item in overrides}
    if config.description and "model.name" in overridden and "description" not in overridden:
        # the recipe's description names the network it was written for: say which one ran
        config.description += f" [model.name set to {config.model.name}]"
    return config.validate(where)


def read_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The mapping in a YAML config file (ConfigError when missing or not valid YAML).

    A file may start from another: ``base: OTHER.yaml`` (a path relative to this file's
    folder) reads that file first (its own ``base`` too) and merges this one over it — a
    section is merged key by key, any other value (lists included) replaced whole. So a run's
    config names only what it changes."""
    return _read_yaml(Path(path), ())


def _read_yaml(path: Path, seen: tuple[Path, ...]) -> dict[str, Any]:
    """:func:`read_yaml` with the chain of files that named ``path`` as their base."""
    import yaml

    if not path.is_file():
        where = f" (the base of {seen[-1]})" if seen else ""
        raise ConfigError(f"{path}: config file not found{where}")
    try:
        raw = load_yaml(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections, got {type(raw).__name__}")
    if "base" not in raw:
        return raw
    base = raw.pop("base")
    if not isinstance(base, str) or not base:
        raise ConfigError(f"{path}: base: expected the path of another config file, got {base!r}")
    base_path = path.parent / base
    if base_path.resolve() in {p.resolve() for p in (*seen, path)}:
        raise ConfigError(f"{path}: base: {base} names a file already in its chain of bases")
    return merge_sections(_read_yaml(base_path, (*seen, path)), raw)


def merge_sections(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` merged into a copy of ``base``: mappings key by key (recursively), any other
    value of ``over`` (a list, a number, ``null``) in place of ``base``'s."""
    merged = dict(base)
    for key, value in over.items():
        below = merged.get(key)
        if isinstance(value, Mapping) and isinstance(below, Mapping):
            merged[key] = merge_sections(below, value)
        else:
            merged[key] = value
    return merged


def build_config(
    cls: type[T], raw: Mapping[str, Any], where: str = "config", overrides: Sequence[str] = ()
) -> T:
    """A config dataclass ``cls`` (every key checked, as :class:`TrainConfig`'s) from a mapping
    with ``--set`` overrides applied; validated when ``cls`` has ``validate(where)``."""
    import copy

    data = copy.deepcopy(dict(raw))
    apply_overrides(data, overrides)
    config = _build(cls, data, where, "")
    check = getattr(config, "validate", None)
    if check is not None:
        check(where)
    return config


def load_config(path: str | os.PathLike[str], overrides: Sequence[str] = ()) -> TrainConfig:
    """Read a YAML training config (see the module docstring)."""
    return config_from_dict(read_yaml(path), str(path), overrides)


def config_to_dict(config: TrainConfig) -> dict[str, Any]:
    """Plain nested dict (YAML/JSON-serialisable) of a config, the extras' sections at the top
    level as in the file."""
    raw = dataclasses.asdict(config)
    raw.pop("extras")
    for name, section in config.extras.items():
        raw[name] = dataclasses.asdict(section)
    return raw
