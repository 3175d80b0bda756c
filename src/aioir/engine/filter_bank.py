"""Fitting a filter bank around a trained restorer: :func:`fit` (``aioir fit-filter-bank``).

The restorer (a saved model, or a registered name with weights) is wrapped in a new
:class:`aioir.models.FilterBankRestorer` and stays frozen; nothing is trained by a trainer:

1. **Filters**: each is fitted by least squares to one slice of the training degradations of a
   task (``filter_bank.task``, blur by default): one degradation of the task at severities in
   one of ``severity_bins`` equal bins of [0, 1], applied to fixed crops of the training photos.
   Filter ``k`` = degradation ``k // bins``, bin ``k % bins``, degradations in the task's spec
   order (for a task given by name alone: the registry's, sorted by name).
2. **Gate**: fixed crops of every training task are restored once by the (frozen) network; the
   head's descriptor of each crop and the PSNR of each candidate against the clean crop are
   kept; the descriptor normalisation is set from their statistics and the gate MLP is trained
   full-batch to maximise the expected PSNR ``Σⱼ wⱼ·PSNRⱼ`` of its per-image choice. This is a
   mixture-of-experts objective: it pushes each image's weight onto its best candidate, which an
   L1 loss on the mixed image (tried first, in Lightning) did not do in 600 steps.
3. **Validation** (for the record): the data's validation crops, scored per task without a
   trainer (:mod:`aioir.engine.validation`), the ``val/*`` keys a training run records.

The result is a saved-model folder (:func:`aioir.models.save_model`): the wrapped weights, the
base model's artefacts (UDAIR's source bank) and metadata, plus ``filter_bank`` (this fit's
record) and ``val``. The config (:class:`FilterBankFitConfig`, a YAML file such as
``configs/udair/filter-bank.yaml``) reuses the training config's ``data`` section.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from aioir.data.synthetic import TaskSpec
from aioir.degradations import available_degradations
from aioir.engine.config import DataConfig, build_config, read_yaml
from aioir.errors import ConfigError
from aioir.metrics import psnr
from aioir.nn.filter_bank import FilterBankHead, LeastSquaresFilterFit

if TYPE_CHECKING:
    from aioir.models import FilterBankRestorer

__all__ = [
    "FilterBankFitConfig", "FilterBankOptions", "FitModelConfig", "FitResult",
    "FitRuntimeConfig", "FitValidationConfig", "filter_bank_groups", "fit", "fit_filters",
    "fit_gate", "gate_examples", "load_fit_config", "wrap_in_filter_bank",
]  # fmt: skip

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------ config
@dataclasses.dataclass
class FitModelConfig:
    """The restorer to wrap: ``name`` is a saved model (folder or ``.safetensors``; its
    artefacts, e.g. a source bank, and metadata come along) or a registered name whose weights
    ``checkpoint`` gives. ``unwrap``: ``name`` is a saved *wrapped* model (a filter-bank fit)
    whose network is taken out and given a new head — a refit."""

    name: str = ""
    checkpoint: str | None = None
    unwrap: bool = False


@dataclasses.dataclass
class FilterBankOptions:
    """The head and its fit.

    One least-squares filter (``taps``² coefficients) per (degradation of ``task``, severity
    bin): ``patches`` clean training crops of ``patch_size`` px degraded by it at a severity
    drawn uniformly in the bin (``severity_bins`` equal bins of [0, 1]), the data's photometric
    jitter included; the head has ``len(degradations) × severity_bins`` filters.

    Then the gate (an MLP of width ``hidden``): ``gate_items_per_task`` fixed training crops of
    every task (``gate_patch_size``) are restored once; each crop's descriptor and the PSNR of
    every candidate (capped at ``score_cap`` dB) are kept, the descriptor normalisation is set
    from them, and the gate is trained full-batch for ``gate_epochs`` AdamW steps (``gate_lr``,
    ``gate_weight_decay``) to maximise the expected PSNR of its choice, the network's own output
    counted ``output_margin`` dB better than it is (leave it only for a clear gain);
    ``gate_target_weight`` > 0 adds a cross-entropy to the soft best candidate
    (``gate_target_temperature`` dB), which keeps a candidate from being abandoned early
    (:func:`fit_gate`).

    ``experts``: saved models (folders or files, e.g. ``aioir train``'s export of a small
    denoiser) or registered models without weights (``dark-channel-prior``) that join the
    candidates, frozen (:class:`~aioir.nn.filter_bank.FilterBankHead`); an entry ``{model:
    PATH, self_ensemble: flips}`` runs that expert as a geometric self-ensemble
    (:class:`~aioir.nn.ensemble.GeometricEnsemble`, ``flips`` or ``all``).

    ``gate_examples_file``: a ``.safetensors`` file for the gate examples (descriptors and
    uncapped candidate scores). When it holds the examples of the same model, data, seed,
    filters and experts, they are read instead of restoring the crops again (the slow part of
    a fit), so gate settings (``hidden`` aside: ``gate_*``, ``score_cap``, ``output_margin``)
    compare in minutes; otherwise they are computed and written there, with the random
    generator's state after them (the gate's reset draws from it next), so either way the fit
    gives the same model.
    """

    task: str = "blur"
    severity_bins: int = 4
    taps: int = 15
    hidden: int = 64
    patches: int = 96
    patch_size: int = 64
    gate_items_per_task: int = 400
    gate_patch_size: int = 96
    gate_epochs: int = 3000
    gate_lr: float = 1e-3
    gate_weight_decay: float = 0.1
    gate_target_weight: float = 0.0
    gate_target_temperature: float = 1.0
    score_cap: float = 60.0
    output_margin: float = 0.0
    experts: list[str | dict[str, Any]] = dataclasses.field(default_factory=list)
    gate_examples_file: str | None = None


#: FilterBankOptions fields that change only the gate's training, not its examples
GATE_ONLY_OPTIONS = (
    "gate_epochs", "gate_lr", "gate_weight_decay", "gate_target_weight",
    "gate_target_temperature", "score_cap", "output_margin", "gate_examples_file",
)  # fmt: skip


@dataclasses.dataclass
class FitValidationConfig:
    """Scoring the fitted model on the data's validation crops (``enabled: false`` skips it):
    the metric ``protocol`` (:func:`aioir.metrics.get_protocol`) and the ``precision`` the model
    runs at (``32`` or ``bf16-mixed``: bfloat16 autocast, as a ``bf16-mixed`` training run
    validates)."""

    enabled: bool = True
    protocol: str = "clean"
    precision: str = "32"


@dataclasses.dataclass
class FitRuntimeConfig:
    """Where and how the fit runs: ``device`` (``cpu``, ``cuda`` or ``auto``), the network's
    memory format (``channels_last``, for its weights and the validation inputs), CPU threads
    and progress bars."""

    device: str = "cpu"
    channels_last: bool = False
    num_threads: int | None = None
    progress_bar: bool = True


@dataclasses.dataclass
class FilterBankFitConfig:
    """A whole filter-bank fit (the sections above; ``data`` is the training config's)."""

    model: FitModelConfig = dataclasses.field(default_factory=FitModelConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    filter_bank: FilterBankOptions = dataclasses.field(default_factory=FilterBankOptions)
    validation: FitValidationConfig = dataclasses.field(default_factory=FitValidationConfig)
    runtime: FitRuntimeConfig = dataclasses.field(default_factory=FitRuntimeConfig)
    seed: int = 123
    description: str = ""

    def validate(self, where: str = "config") -> FilterBankFitConfig:
        """Check values that types alone do not; returns ``self``."""
        from aioir.metrics import get_protocol

        def bad(key: str, msg: str) -> ConfigError:
            return ConfigError(f"{where}: {key}: {msg}")

        if not self.model.name:
            raise bad("model.name", "give the saved model (or registered name) to wrap")
        self.data.validate(where)
        if self.data.kind != "synthetic":
            raise bad("data.kind", "the filter-bank fit degrades clean photos: use 'synthetic'")
        fb = self.filter_bank
        for key in ("severity_bins", "patches", "patch_size", "gate_items_per_task",
                    "gate_patch_size", "gate_epochs", "hidden"):  # fmt: skip
            if getattr(fb, key) < 1:
                raise bad(f"filter_bank.{key}", "must be ≥ 1")
        if fb.gate_target_weight < 0:
            raise bad("filter_bank.gate_target_weight", "must be ≥ 0")
        if fb.gate_target_temperature <= 0:
            raise bad("filter_bank.gate_target_temperature", "must be > 0 (dB)")
        if fb.taps < 1 or fb.taps % 2 == 0:
            raise bad("filter_bank.taps", "must be a positive odd number")
        for i, item in enumerate(fb.experts):
            expert_entry(item, f"{where}: filter_bank.experts[{i}]")
        get_protocol(self.validation.protocol)
        if self.validation.precision not in ("32", "bf16-mixed"):
            raise bad("validation.precision", "expected 32 or bf16-mixed")
        if self.runtime.device not in ("cpu", "cuda", "auto"):
            raise bad("runtime.device", "expected cpu, cuda or auto")
        return self


def load_fit_config(
    path: str | os.PathLike[str], overrides: Sequence[str] = ()
) -> FilterBankFitConfig:
    """Read a YAML filter-bank fit config (every key checked; ``--set`` overrides applied)."""
    return build_config(FilterBankFitConfig, read_yaml(path), str(path), overrides)


# ------------------------------------------------------------------------------ fitting
def filter_bank_groups(spec: TaskSpec, task: str, bins: int) -> dict[str, TaskSpec]:
    """One single-degradation spec per (degradation, severity bin), in filter order."""
    degradations: list[Any] = list(spec.degradations) or available_degradations(task)
    groups: dict[str, TaskSpec] = {}
    for d, degradation in enumerate(degradations):
        for b in range(bins):
            groups[f"{task}/{d}/{b}"] = TaskSpec((degradation,), (b / bins, (b + 1) / bins))
    return groups


def wrap_in_filter_bank(
    network: nn.Module,
    filters: int,
    taps: int,
    hidden: int,
    seed: int,
    experts: Sequence[nn.Module] = (),
) -> FilterBankRestorer:
    """``network`` inside a new :class:`~aioir.models.FilterBankRestorer` (with ``experts``).

    The head's random initialisation (the gate's first layer, which the fit starts from) is
    the one it had when :class:`~aioir.models.Restormer` built the head itself, right after its
    U-Net: drawn from the generator seeded with ``seed`` once that U-Net's initialisation has
    been drawn, so a fit reproduces the models fitted then (v3 and v4) exactly. The global
    generator advances as if the head had been built here. Other backbones (NAFNet) keep the
    head's own initialisation.
    """
    from aioir.models import FilterBankRestorer, Restormer

    model = FilterBankRestorer(network, filters, taps, hidden, experts=experts)
    backbone = getattr(network, "backbone_options", None)
    if isinstance(network, Restormer) and backbone is not None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            Restormer(**backbone)
            channels = int(network.feature_channels), int(network.context_map_channels)
            stand_ins = [nn.Identity() for _ in experts]  # the gate's shape; draw nothing
            head = FilterBankHead(*channels, filters, taps, hidden, experts=stand_ins)
        model.filter_bank.gate.load_state_dict(head.gate.state_dict())
    return model


def fit_filters(
    head: FilterBankHead,
    datamodule: Any,
    groups: dict[str, TaskSpec],
    options: FilterBankOptions,
    progress: bool = True,
) -> None:
    """Fit and install ``head``'s filters, one per group, on ``datamodule``'s training photos."""
    pairs = datamodule.synthetic_pairs(groups, options.patches, options.patch_size, salt=3)
    fit = LeastSquaresFilterFit(head.num_filters, head.taps)
    loader = DataLoader(pairs, batch_size=16, shuffle=False)
    for batch in tqdm(loader, desc="fitting filters", disable=not progress, leave=False):
        for k in batch["task_id"].unique().tolist():
            pick = batch["task_id"] == k
            fit.add(int(k), batch["input"][pick], batch["target"][pick])
    head.set_filters(fit.solve().to(head.filters.device))
    log.info("fitted %d filters on %d crops each", head.num_filters, options.patches)


@torch.no_grad()
def gate_examples(
    model: FilterBankRestorer,
    head: FilterBankHead,
    loader: Any,
    score_cap: float,
    progress: bool = True,
) -> tuple[Tensor, Tensor]:
    """Descriptors (N×D) and candidate PSNRs (N×(K+E+2), capped) of ``loader``'s crops."""
    from aioir.nn.padding import pad_to_multiple

    was_training = model.training
    device = head.filters.device
    model.eval()
    descriptors, scores = [], []
    try:
        for batch in tqdm(loader, desc="filter-bank gate examples", disable=not progress,
                          leave=False):  # fmt: skip
            target = batch["target"].to(device)
            h, w = target.shape[-2:]
            padded, _ = pad_to_multiple(batch["input"].to(device), model.size_multiple)
            y, x, features, context = model.head_inputs(padded)
            descriptors.append(head.descriptor(y, x, features, context).float())
            scores.append(torch.stack([
                psnr(head.candidate(j, y, x)[..., :h, :w].float().clamp(0, 1), target)
                for j in range(head.num_candidates)
            ], dim=1).clamp(max=score_cap))  # fmt: skip
    finally:
        model.train(was_training)
    return torch.cat(descriptors), torch.cat(scores)


def fit_gate(
    head: FilterBankHead,
    descriptors: Tensor,
    scores: Tensor,
    epochs: int,
    lr: float = 1e-3,
    weight_decay: float = 0.1,
    progress: bool = False,
    target_weight: float = 0.0,
    target_temperature: float = 1.0,
) -> float:
    """Set the descriptor normalisation from ``descriptors``, reset the gate's last layer and
    train the gate full-batch to maximise the mean expected score ``Σⱼ wⱼ·scoreⱼ``; returns
    that score at the last step.

    ``target_weight`` > 0 adds that many dB times the cross-entropy between the gate's choice and
    the soft best-candidate target ``softmax(scores / target_temperature)`` (temperature in
    dB): the expected score alone saturates — a candidate whose weight collapses early gets no
    gradient back even where it is best — and the cross-entropy keeps pulling towards it.
    """
    head.set_descriptor_stats(descriptors)
    # start from an unbiased choice: the head's "stay close to the network" initialisation
    # (output logit +5) is for gradient fine-tuning and would anchor this fit on the output
    head.gate[-1].reset_parameters()
    params = list(head.gate.parameters())
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    targets = (scores / target_temperature).softmax(dim=1) if target_weight > 0 else None
    expected = torch.zeros(())
    with torch.enable_grad():
        for _ in tqdm(range(epochs), desc="fitting the gate", disable=not progress, leave=False):
            logits = head.gate(head.normalize(descriptors))
            expected = (logits.softmax(dim=1) * scores).sum(dim=1).mean()
            loss = -expected
            if targets is not None:
                cross_entropy = -(targets * logits.log_softmax(dim=1)).sum(dim=1).mean()
                loss = loss + target_weight * cross_entropy
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    log.info("filter-bank gate: expected PSNR %.2f dB on %d crops", expected.item(), len(scores))
    return float(expected.item())


def train_gate(
    head: FilterBankHead,
    descriptors: Tensor,
    scores: Tensor,
    options: FilterBankOptions,
    progress: bool = False,
) -> float:
    """:func:`fit_gate` on gate examples as :func:`gate_examples` made them (uncapped scores),
    with ``options``' cap, output margin and gate settings; returns the expected score."""
    scores = scores.clamp(max=options.score_cap)
    scores[:, 0] += options.output_margin  # the network's output: leave it only for a clear gain
    return fit_gate(
        head, descriptors, scores, options.gate_epochs, options.gate_lr,
        options.gate_weight_decay, progress, options.gate_target_weight,
        options.gate_target_temperature,
    )  # fmt: skip


# ------------------------------------------------------------------------------ the entry point
@dataclasses.dataclass
class FitResult:
    """What :func:`fit` wrote and measured."""

    output: Path
    model: nn.Module
    record: dict[str, Any]
    val: dict[str, float] | None


def _device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("runtime.device: cuda is not available on this machine")
    return torch.device(name)


def _load_base(config: FitModelConfig) -> nn.Module:
    from aioir.models import RestorerWrapper, load_model, unwrap

    network = load_model(config.name, checkpoint=config.checkpoint)
    if not isinstance(network, RestorerWrapper):
        if config.unwrap:
            raise ConfigError(f"model.unwrap: {config.name} is not a wrapped model")
        return network
    if not config.unwrap:
        raise ConfigError(
            f"model.name: {config.name} is already wrapped ({type(network).__name__}); "
            "give the network it was fitted on, or set model.unwrap: true to refit its head"
        )
    inner = unwrap(network)
    # the saved model's record (its training, its bank) is the network's; the old head's goes
    metadata = dict(getattr(network, "aioir_metadata", {}) or {})
    metadata.pop("filter_bank", None)
    metadata.pop("val", None)
    inner.aioir_metadata = metadata
    return inner


def expert_entry(item: str | Mapping[str, Any], where: str) -> tuple[str, str | None]:
    """An entry of ``filter_bank.experts`` as (model, self-ensemble mode or ``None``)."""
    from aioir.nn.ensemble import ENSEMBLE_MODES

    if isinstance(item, str):
        return item, None
    unknown = sorted(set(item) - {"model", "self_ensemble"})
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown} (known: model, self_ensemble)")
    model, mode = item.get("model"), item.get("self_ensemble")
    if not isinstance(model, str) or not model:
        raise ConfigError(f"{where}: give the expert as model: PATH")
    if mode is not None and mode not in ENSEMBLE_MODES:
        raise ConfigError(f"{where}: self_ensemble must be one of {', '.join(ENSEMBLE_MODES)}")
    return model, mode


def _load_experts(entries: Sequence[str | Mapping[str, Any]]) -> list[nn.Module]:
    """The expert models (saved models, or registered models without weights), frozen and in
    eval mode, each wrapped in its self-ensemble if its entry names one."""
    from aioir.models import RestorerWrapper, load_model, untrained_name
    from aioir.nn.ensemble import GeometricEnsemble

    experts: list[nn.Module] = []
    for i, item in enumerate(entries):
        path, mode = expert_entry(item, f"filter_bank.experts[{i}]")
        expert = load_model(path)
        if isinstance(expert, RestorerWrapper):
            raise ConfigError(f"filter_bank.experts: {path} is a wrapped model; give a network")
        if untrained_name(expert) is not None:
            raise ConfigError(
                f"filter_bank.experts: {path} has random weights; give a trained model's folder"
            )
        expert = expert.requires_grad_(False).eval()
        experts.append(expert if mode is None else GeometricEnsemble(expert, mode))
    return experts


def _training_summary(model: nn.Module) -> dict[str, Any]:
    """What an expert's saved training record says of it (description, steps, val PSNR)."""
    from aioir.nn.ensemble import GeometricEnsemble

    if isinstance(model, GeometricEnsemble):
        model = model.module
    training = dict(getattr(model, "aioir_metadata", {}).get("training") or {})
    keys = ("description", "steps", "best_val_psnr", "wall_time_s")
    return {k: training[k] for k in keys if k in training}


def _examples_key(config: FilterBankFitConfig) -> str:
    """What the gate examples depend on, as canonical JSON (the examples file's stamp)."""
    import json

    options = {
        k: v for k, v in dataclasses.asdict(config.filter_bank).items()
        if k not in GATE_ONLY_OPTIONS and k != "hidden"
    }  # fmt: skip
    what = {
        "model": dataclasses.asdict(config.model), "data": dataclasses.asdict(config.data),
        "seed": config.seed, "filter_bank": options, "device": config.runtime.device,
        "channels_last": config.runtime.channels_last,
    }  # fmt: skip
    return json.dumps(what, sort_keys=True, default=str)


def _read_examples(path: Path, key: str) -> tuple[Tensor, Tensor, Tensor] | None:
    """The examples (and the random generator's state after them) stored at ``path`` when they
    were made with ``key``; ``None`` otherwise."""
    from safetensors import safe_open

    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            if (f.metadata() or {}).get("key") != key:
                log.info("%s: gate examples of another fit; computing them again", path)
                return None
            return f.get_tensor("descriptors"), f.get_tensor("scores"), f.get_tensor("rng_state")
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"filter_bank.gate_examples_file: {path}: unreadable ({exc})") from exc


def _write_examples(
    path: Path, key: str, descriptors: Tensor, scores: Tensor, rng_state: Tensor
) -> None:
    from safetensors.torch import save

    from aioir.io import write_bytes_atomically

    tensors = {"descriptors": descriptors, "scores": scores, "rng_state": rng_state}
    payload = save({k: v.contiguous() for k, v in tensors.items()}, metadata={"key": key})
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomically(path, payload, overwrite=True)


def _validate(
    model: nn.Module, datamodule: Any, config: FilterBankFitConfig, device: torch.device
) -> dict[str, float]:
    from aioir.engine.validation import validate_model
    from aioir.metrics import get_protocol

    bf16 = config.validation.precision == "bf16-mixed"
    channels_last = config.runtime.channels_last

    def restore(x: Tensor) -> Tensor:
        x = x.to(device)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            return model(x).float().cpu()

    model.eval()
    batches = tqdm(
        datamodule.val_dataloader(), desc="validating", disable=not config.runtime.progress_bar,
        leave=False,
    )  # fmt: skip
    protocol = get_protocol(config.validation.protocol)
    return validate_model(restore, batches, datamodule.task_names, protocol)


def fit(
    config: FilterBankFitConfig, output: str | os.PathLike[str], *, overwrite: bool = False
) -> FitResult:
    """Wrap ``config.model`` in a filter bank fitted as ``config`` says, validate it and write
    the saved-model folder ``output`` (see the module docstring). An existing non-empty
    ``output`` needs ``overwrite``."""
    import lightning.pytorch as pl

    from aioir.engine.datamodule import RestorationDataModule
    from aioir.metrics import get_protocol
    from aioir.models import save_model
    from aioir.models.artifacts import check_model_output
    from aioir.nn.memory_format import to_channels_last

    out = Path(output)
    check_model_output(out, overwrite)
    rt, fb, progress = config.runtime, config.filter_bank, config.runtime.progress_bar
    if rt.num_threads:
        torch.set_num_threads(int(rt.num_threads))
    device = _device(rt.device)
    start = time.perf_counter()
    # the order of the random draws is a training run's: seed, data, network (then the head)
    pl.seed_everything(config.seed, verbose=False)
    dm = RestorationDataModule(config.data, config.data.resolved_root(), seed=config.seed)
    network = _load_base(config.model)
    base_metadata = dict(getattr(network, "aioir_metadata", {}) or {})
    dm.setup("fit")
    groups = filter_bank_groups(dm.task_spec(fb.task), fb.task, fb.severity_bins)
    experts = _load_experts(fb.experts)
    model = wrap_in_filter_bank(network, len(groups), fb.taps, fb.hidden, config.seed, experts)
    if rt.channels_last:
        to_channels_last(model)
    model.to(device)
    head = model.filter_bank

    fit_filters(head, dm, groups, fb, progress)
    specs = {task: dm.task_spec(task) for task in dm.task_names}
    crops = dm.synthetic_pairs(specs, fb.gate_items_per_task, fb.gate_patch_size, salt=4)
    loader = DataLoader(crops, batch_size=16, shuffle=False)
    cache = Path(fb.gate_examples_file) if fb.gate_examples_file else None
    key = _examples_key(config)
    examples = _read_examples(cache, key) if cache is not None else None
    if examples is None:
        descriptors, scores = gate_examples(model, head, loader, float("inf"), progress)
        if cache is not None:
            _write_examples(cache, key, descriptors, scores, torch.get_rng_state())
    else:
        # the generator as restoring the crops left it (the gate's reset draws from it next)
        descriptors, scores, rng_state = examples
        torch.set_rng_state(rng_state)
    expected = train_gate(head, descriptors, scores, fb, progress)
    val = _validate(model, dm, config, device) if config.validation.enabled else None

    record: dict[str, Any] = {
        "description": config.description,
        "model": dataclasses.asdict(config.model),
        "data": dm.describe(),
        "seed": config.seed,
        "filter_bank": dataclasses.asdict(fb),
        "filters": head.num_filters,
        "experts": [
            {"model": path, "self_ensemble": mode, "training": _training_summary(e)}
            for (path, mode), e in zip(
                (expert_entry(item, "filter_bank.experts") for item in fb.experts),
                experts,
                strict=True,
            )
        ],
        "gate_examples": len(scores),
        "gate_expected_psnr": expected,
        "protocol": get_protocol(config.validation.protocol).header(),
        "precision": config.validation.precision,
        "wall_time_s": round(time.perf_counter() - start, 2),
    }
    metadata = {"task_names": list(dm.task_names), **base_metadata, "filter_bank": record}
    metadata["val"] = val or None
    model = model.cpu().eval()
    model.aioir_metadata = metadata
    save_model(model, out, metadata=metadata, overwrite=overwrite)
    return FitResult(out, model, record, val)
