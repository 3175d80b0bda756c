"""Loss composition from configuration: ``{l1: 1.0, cscl: {weight: 0.2, mode: faithful}}``.

A loss *term* is a callable ``term(inputs: LossInputs) -> (value, logs)`` built by a factory
registered under a name with :func:`register_loss` — here the pixel losses, in a method package
its own (UDAIR's ``cscl``; the registry loads the method packages before it answers). :class:`CompositeLoss` sums the weighted
terms and reports each one, so a new loss plugs in by registering a factory; the trainer asks
:attr:`CompositeLoss.needs_features` to know whether the model must return its features.

The pixel terms (``l1``, ``charbonnier``, ``fft``, ``mean_color``) take ``task_weights:
{task: weight}``: each sample's loss is weighted by its task's weight (1 for tasks not named)
and the sum divided by the sum of the weights, so the weights act like sampling proportions —
``{blur: 3}`` counts a blur sample as three — while a task-balanced batch (which CSCL needs)
stays as it is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from aioir.errors import ConfigError
from aioir.losses.reconstruction import (
    charbonnier_loss,
    fft_l1_loss,
    l1_loss,
    mean_color_loss,
    psnr_loss,
)
from aioir.plugins import load_methods

__all__ = [
    "LOSSES",
    "CompositeLoss",
    "LossInputs",
    "LossSpec",
    "LossTerm",
    "loss_option_targets",
    "parse_loss_specs",
    "register_loss",
    "with_loss_option",
]


@dataclasses.dataclass
class LossInputs:
    """Everything a loss term may need from one training step.

    ``features`` and ``logit_scale`` come from a model's ``forward_features``; the batch
    is task-ordered with ``num_tasks × samples_per_task`` items when a term needs that.
    ``task_ids`` (``B``, positions in ``task_names``) is what per-task weights read.
    ``batch`` is the whole training batch (labels beyond the target, e.g. a CutMix
    ``label_map``) and ``outputs`` the model's whole ``forward_features`` result, for terms
    that need more than ``features``.
    ``model`` is the network being trained, for terms that run it again on ``batch["input"]``
    (e.g. with altered internal decisions); ``None`` outside training.
    """

    pred: Tensor
    target: Tensor
    features: Tensor | None = None
    logit_scale: Tensor | None = None
    num_tasks: int = 1
    samples_per_task: int = 1
    task_ids: Tensor | None = None
    task_names: Sequence[str] = ()
    batch: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    outputs: Any = None
    model: nn.Module | None = None


class LossTerm(Protocol):
    """One loss: ``term(inputs) -> (scalar tensor, {name: float to log})``."""

    needs_features: bool

    def __call__(self, inputs: LossInputs) -> tuple[Tensor, dict[str, Tensor]]: ...


LOSSES: dict[str, Callable[..., LossTerm]] = {}


def register_loss(name: str) -> Callable[[Callable[..., LossTerm]], Callable[..., LossTerm]]:
    """Register a loss-term factory ``(**params) -> LossTerm`` under ``name``."""

    def wrap(factory: Callable[..., LossTerm]) -> Callable[..., LossTerm]:
        if name in LOSSES:
            raise ValueError(f"loss {name!r} is already registered")
        LOSSES[name] = factory
        return factory

    return wrap


@dataclasses.dataclass(frozen=True)
class LossSpec:
    """A configured loss: registered ``name``, ``weight`` and factory ``params``."""

    name: str
    weight: float = 1.0
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)


def parse_loss_specs(config: Mapping[str, Any], where: str = "losses") -> list[LossSpec]:
    """``{name: weight}`` or ``{name: {weight: w, **params}}`` → specs (validated)."""
    if not isinstance(config, Mapping) or not config:
        raise ConfigError(f"{where}: expected a non-empty mapping of loss name → weight")
    load_methods()  # method packages register their losses (e.g. UDAIR's cscl)
    specs = []
    for name, value in config.items():
        if name not in LOSSES:
            raise ConfigError(
                f"{where}.{name}: unknown loss; registered: {', '.join(sorted(LOSSES))}"
            )
        if isinstance(value, bool) or not isinstance(value, (int, float, Mapping)):
            raise ConfigError(f"{where}.{name}: expected a weight or a mapping, got {value!r}")
        params = dict(value) if isinstance(value, Mapping) else {"weight": value}
        weight = params.pop("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            raise ConfigError(f"{where}.{name}.weight: expected a number, got {weight!r}")
        specs.append(LossSpec(str(name), float(weight), params))
    return specs


def loss_option_targets(config: Mapping[str, Any], option: str) -> list[str]:
    """The configured losses (``{name: weight or mapping}``) whose factory takes ``option``."""
    import inspect

    load_methods()
    names = []
    for name in config:
        factory = LOSSES.get(str(name))
        if factory is not None and option in inspect.signature(factory).parameters:
            names.append(str(name))
    return names


def with_loss_option(
    config: Mapping[str, Any], option: str, value: Any, where: str = "losses"
) -> dict[str, Any]:
    """``config`` with ``option: value`` set on every configured loss whose factory takes it
    (e.g. a file of pretrained weights passed on the command line); :class:`ConfigError` when
    none does."""
    targets = loss_option_targets(config, option)
    if not targets:
        raise ConfigError(
            f"{where}: no configured loss ({', '.join(map(str, config))}) takes {option!r}"
        )
    out = dict(config)
    for name in targets:
        current = out[name]
        params = dict(current) if isinstance(current, Mapping) else {"weight": current}
        params[option] = value
        out[name] = params
    return out


class CompositeLoss:
    """Weighted sum of configured loss terms; returns the total and every part for logging."""

    def __init__(self, specs: list[LossSpec] | Mapping[str, Any]) -> None:
        if isinstance(specs, Mapping):
            specs = parse_loss_specs(specs)
        load_methods()
        self.specs = list(specs)
        self.terms: list[LossTerm] = []
        for spec in self.specs:
            try:
                self.terms.append(LOSSES[spec.name](**spec.params))
            except TypeError as exc:
                raise ConfigError(f"losses.{spec.name}: invalid parameter ({exc})") from exc

    @property
    def needs_features(self) -> bool:
        """True if a term needs the model's features (``forward_features``)."""
        return any(t.needs_features for t in self.terms)

    def check_tasks(self, task_names: Sequence[str]) -> None:
        """Raise :class:`ConfigError` if a term's ``task_weights`` names a task not trained."""
        known = set(task_names)
        for spec, term in zip(self.specs, self.terms, strict=True):
            unknown = sorted(set(getattr(term, "task_weights", None) or {}) - known)
            if unknown:
                raise ConfigError(
                    f"losses.{spec.name}.task_weights: {', '.join(map(repr, unknown))} "
                    f"not among the training tasks ({', '.join(task_names)})"
                )

    def __call__(self, inputs: LossInputs) -> tuple[Tensor, dict[str, Tensor]]:
        total: Tensor | None = None
        logs: dict[str, Tensor] = {}
        for spec, term in zip(self.specs, self.terms, strict=True):
            value, extra = term(inputs)
            logs[spec.name] = value.detach()
            logs.update({f"{spec.name}_{k}": v for k, v in extra.items()})
            weighted = spec.weight * value
            total = weighted if total is None else total + weighted
        assert total is not None
        return total, logs


# ------------------------------------------------------------------------------ built-ins
TaskWeights = Mapping[str, float] | None


def _check_task_weights(name: str, task_weights: TaskWeights) -> dict[str, float]:
    if task_weights is None:
        return {}
    if not isinstance(task_weights, Mapping):
        raise ConfigError(
            f"losses.{name}.task_weights: expected {{task: weight}}, got {task_weights!r}"
        )
    out = {}
    for task, w in task_weights.items():
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not w >= 0:
            raise ConfigError(
                f"losses.{name}.task_weights.{task}: expected a weight ≥ 0, got {w!r}"
            )
        out[str(task)] = float(w)
    return out


class _Pixel:
    """A pixel loss ``fn(pred, target, reduction=…, **kwargs)``, optionally weighted per task."""

    needs_features = False

    def __init__(
        self, name: str, fn: Callable[..., Tensor], task_weights: TaskWeights = None, **kwargs: Any
    ) -> None:
        self.name, self.fn, self.kwargs = name, fn, kwargs
        self.task_weights = _check_task_weights(name, task_weights)

    def __call__(self, inputs: LossInputs) -> tuple[Tensor, dict[str, Tensor]]:
        if not self.task_weights:
            return self.fn(inputs.pred, inputs.target, **self.kwargs), {}
        if inputs.task_ids is None or not inputs.task_names:
            raise ConfigError(f"losses.{self.name}.task_weights: the batch has no task ids")
        table = torch.tensor(
            [self.task_weights.get(t, 1.0) for t in inputs.task_names],
            dtype=torch.float32, device=inputs.pred.device,
        )  # fmt: skip
        weights = table[inputs.task_ids.to(inputs.pred.device).long()]
        per_sample = self.fn(inputs.pred, inputs.target, reduction="sample", **self.kwargs)
        total = weights.sum()
        if total <= 0:  # every sample of this batch has weight 0
            return per_sample.sum() * 0.0, {}
        return (weights * per_sample.float()).sum() / total, {}


@register_loss("l1")
def _l1(task_weights: TaskWeights = None) -> LossTerm:
    """Plain L1 (the all-in-one papers' training loss)."""
    return _Pixel("l1", l1_loss, task_weights)


@register_loss("charbonnier")
def _charbonnier(eps: float = 1e-3, task_weights: TaskWeights = None) -> LossTerm:
    """Charbonnier (Restormer-style smooth L1)."""
    return _Pixel("charbonnier", charbonnier_loss, task_weights, eps=float(eps))


@register_loss("fft")
def _fft(norm: str = "ortho", task_weights: TaskWeights = None) -> LossTerm:
    """L1 on the 2-D FFT (MIMO-UNet/AdaIR's frequency loss; ``norm`` ``ortho`` or ``backward``)."""
    if norm not in ("ortho", "backward"):
        raise ConfigError(f"losses.fft.norm must be 'ortho' or 'backward', got {norm!r}")
    return _Pixel("fft", fft_l1_loss, task_weights, norm=norm)


@register_loss("mean_color")
def _mean_color(task_weights: TaskWeights = None) -> LossTerm:
    """L1 between each image's per-channel means (a uniform tint or brightness offset)."""
    return _Pixel("mean_color", mean_color_loss, task_weights)


@register_loss("psnr")
def _psnr(eps: float = 1e-8, task_weights: TaskWeights = None) -> LossTerm:
    """NAFNet's PSNR loss: each image's ``10·log10(MSE + eps)``, averaged (scale-free per image)."""
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps > 0:
        raise ConfigError(f"losses.psnr.eps: expected a number > 0, got {eps!r}")
    return _Pixel("psnr", psnr_loss, task_weights, eps=float(eps))
