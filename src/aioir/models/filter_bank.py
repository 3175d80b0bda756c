"""The filter bank as a wrapper around a restorer: :class:`FilterBankRestorer`.

``FilterBankRestorer(restorer, filters=K, experts=[…])`` adds a
:class:`aioir.nn.filter_bank.FilterBankHead` after ``restorer``'s output: a per-image choice
among the output, the input, ``K`` fixed linear filters of the input and the input restored by
each expert (registered models: a ``residual-cnn-small`` denoiser, ``dark-channel-prior``), made
from the restorer's refinement features and its per-image context map
(:meth:`aioir.models.Restormer.forward_padded_with_maps`; UDAIR's degradation map). The
restorer is not changed. Fitted by :func:`aioir.engine.filter_bank.fit` (``aioir
fit-filter-bank``); the shipped default model (v5) is one.

Saved form (:mod:`aioir.models.wrappers`): ``"wrappers": [{"name": "filter_bank", "filters": K,
"taps": T, "hidden": H}]`` in ``config.json``, plus ``"experts": [{"architecture", "preset",
"overrides", "self_ensemble"?, "grey"?, "label"?}, …]`` when the head has experts
(``self_ensemble``: one run as a :class:`~aioir.nn.ensemble.GeometricEnsemble`, its weights
then under ``…<e>.module.``; ``grey``: the record of a twin run on black-and-white images, a
:class:`~aioir.nn.grey_twin.GreyTwin`, weights under ``…<e>.colour.`` and ``…<e>.grey.``;
``label``: what ``--explain`` calls it),
``"input_statistics": true`` when its gate reads them, ``"classifier": {"classes", "widths",
"hidden"}`` (and ``"highlight_powers"`` when it reads the input's highlights, with
``"shadow_powers"`` when its shadows too, ``"shadow_bands"`` when its bands' shadows as well) when it reads
a degradation classifier's verdict (weights ``filter_bank.classifier.*``),
``"gate_descriptor": "compact"`` when, of the network's terms,
it reads only the blur and change ones, and ``"routed_gate": true`` when its gate is one per
degradation class, mixed by the classifier (``"gate_statistics": true`` when its gates read the
input's statistics too; ``"told_gate": true`` when it has a second gate
for inputs whose degradation the user names; weights ``filter_bank.told_gate.*``); weights
``restorer.*`` (the network) and ``filter_bank.*`` (the head, its experts' under
``filter_bank.experts.<e>.``). Models saved before the wrapper existed (format 1) described
the head as constructor arguments
(``overrides: {filter_bank: K, filter_taps: T}``) with its keys beside the network's:
:func:`legacy_wrapper_spec` and :func:`nest_legacy_state` translate them on load.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from aioir.errors import ConfigError
from aioir.models.checkpoints import STORAGE_DTYPE, STORAGE_DTYPES
from aioir.models.protocols import InferenceConfigurable, TaskSuggestion
from aioir.models.registry import create_model, registered_name
from aioir.models.wrappers import RestorerWrapper, register_wrapper
from aioir.nn.degradation_classifier import DegradationClassifier, degradation_classifier
from aioir.nn.ensemble import GeometricEnsemble
from aioir.nn.filter_bank import (
    ROUTED_HEADS,
    ClassifierFilterBankHead,
    CompactClassifierFilterBankHead,
    FilterBankHead,
    InputStatisticsFilterBankHead,
    RoutedClassifierFilterBankHead,
    RoutedCompactClassifierFilterBankHead,
    StatisticsRoutedClassifierFilterBankHead,
    StatisticsRoutedCompactClassifierFilterBankHead,
    weights_fingerprint,
)
from aioir.nn.grey_twin import GreyTwin
from aioir.nn.inference_memory import declared_bytes_per_pixel
from aioir.nn.padding import pad_to_multiple, unpad
from aioir.tasks import canonical_task, task_parts

__all__ = [
    "LEGACY_OVERRIDES",
    "FilterBankRestorer",
    "expert_identity",
    "hint_for",
    "legacy_wrapper_spec",
    "nest_legacy_state",
    "reject_legacy_overrides",
]

#: The constructor arguments that described the head before it was a wrapper (format 1).
LEGACY_OVERRIDES: tuple[str, ...] = ("filter_bank", "filter_taps")


@register_wrapper("filter_bank")
class FilterBankRestorer(RestorerWrapper):
    """``restorer`` followed by a filter-bank head (module docstring).

    Args:
        restorer: a network with ``forward_padded_with_maps(x)`` (the image, its features and
            a context map; every :class:`~aioir.models.Restormer`) and ``feature_channels`` /
            ``context_map_channels``.
        filters: ``K``, the number of linear filters.
        taps: their side (odd).
        hidden: width of the gate MLP.
        experts: the expert restorers: modules built by :func:`aioir.models.create_model` (their
            ``aioir_config`` is saved) or that function's records, ``{"architecture",
            "preset", "overrides"}``, from which they are built (with random weights: loading
            the saved model fills them).
        input_statistics: the gate also reads the input's classical statistics (noise level,
            dark channel, exposure: :class:`~aioir.nn.filter_bank.InputStatisticsFilterBankHead`).
        classifier: the gate also reads a degradation classifier's verdict on the input
            (:class:`~aioir.nn.filter_bank.ClassifierFilterBankHead`): the module, or its saved
            record ``{"classes", "widths", "hidden"[, "highlight_powers"[, "shadow_powers"[,
            "shadow_bands"]]]}`` (random weights until loaded).
        gate_descriptor: ``"full"`` (every descriptor term) or, with a classifier,
            ``"compact"``: the classifier and the blur and change terms only
            (:class:`~aioir.nn.filter_bank.CompactClassifierFilterBankHead`).
        routed_gate: with a classifier, one gate per degradation class, mixed by the
            classifier's probabilities
            (:class:`~aioir.nn.filter_bank.RoutedClassifierFilterBankHead`).
        told_gate: with a routed gate, a second gate for inputs whose degradation the user
            names (:class:`~aioir.nn.filter_bank.ToldGate`; ``task`` in
            :meth:`set_inference_options`).
        gate_statistics: with a routed gate, its gates also read the input's classical
            statistics and its bands' shadows, before the classifier's verdict
            (:class:`~aioir.nn.filter_bank.StatisticsRoutedClassifierFilterBankHead`).
    """

    def __init__(
        self,
        restorer: nn.Module,
        filters: int = 12,
        taps: int = 15,
        hidden: int = 64,
        experts: Sequence[nn.Module | Mapping[str, Any]] = (),
        input_statistics: bool = False,
        classifier: DegradationClassifier | Mapping[str, Any] | None = None,
        gate_descriptor: str = "full",
        routed_gate: bool = False,
        told_gate: bool = False,
        gate_statistics: bool = False,
    ) -> None:
        if not hasattr(restorer, "forward_padded_with_maps"):
            raise ConfigError(
                f"a {type(restorer).__name__} cannot carry a filter bank: it has no "
                "forward_padded_with_maps (its features and context map)"
            )
        super().__init__(restorer)
        features = int(restorer.feature_channels)
        context = int(restorer.context_map_channels)
        modules = [e if isinstance(e, nn.Module) else _build_expert(e) for e in experts]
        if gate_descriptor not in ("full", "compact"):
            raise ConfigError(f"gate_descriptor must be full or compact, not {gate_descriptor!r}")
        if gate_descriptor == "compact" and classifier is None:
            raise ConfigError("a compact gate descriptor reads a classifier: give one")
        if routed_gate and classifier is None:
            raise ConfigError("a gate routed by a classifier needs one: give it")
        if told_gate and not routed_gate:
            raise ConfigError("a told gate belongs to a routed gate: set routed_gate too")
        if gate_statistics and not routed_gate:
            raise ConfigError("gate statistics belong to a routed gate: set routed_gate too")
        if classifier is not None and input_statistics:
            raise ConfigError("a gate reads the input's statistics or a classifier, not both")
        if classifier is not None:
            if not isinstance(classifier, nn.Module):
                classifier = _build_classifier(classifier)
            head: type[FilterBankHead] = {
                ("full", False, False): ClassifierFilterBankHead,
                ("compact", False, False): CompactClassifierFilterBankHead,
                ("full", True, False): RoutedClassifierFilterBankHead,
                ("compact", True, False): RoutedCompactClassifierFilterBankHead,
                ("full", True, True): StatisticsRoutedClassifierFilterBankHead,
                ("compact", True, True): StatisticsRoutedCompactClassifierFilterBankHead,
            }[gate_descriptor, bool(routed_gate), bool(gate_statistics)]
            given: dict[str, Any] = {"classifier": classifier}
            if told_gate:
                given["told_gate"] = True
            self.filter_bank = head(
                features, context, filters, taps, hidden, experts=modules, **given
            )
        else:
            head = InputStatisticsFilterBankHead if input_statistics else FilterBankHead
            self.filter_bank = head(features, context, filters, taps, hidden, experts=modules)

    @property
    def self_ensemble_mode(self) -> str | None:
        """The self-ensemble mode when none is named (:func:`~aioir.nn.ensemble.
        preferred_mode`): ``mirror`` for a head whose classifier reads the photo upright (haze
        grows towards the top of a photo; turned upside down it reads as clean: the default
        model loses 1.8 dB of haze under ``flips``, none under ``mirror``), else ``None``."""
        return "mirror" if isinstance(self.filter_bank, ClassifierFilterBankHead) else None

    @property
    def inference_bytes_per_pixel(self) -> int | None:
        """The head's memory per input pixel (about four float32 copies of the features) plus
        the larger of the network's declared activation memory and its largest expert's: an
        expert runs after the network has returned, in the memory its activations freed (v4
        declares 2,610 + 16 × 32 = 3,122 B/px and measures 2,661; v5, with a 887-B/px expert,
        the same and measures 2,199); ``None`` when the network declares none."""
        inner = declared_bytes_per_pixel(self.restorer)
        if inner is None:
            return None
        experts = [declared_bytes_per_pixel(e) or 0 for e in self.filter_bank.experts]
        return 16 * int(self.restorer.feature_channels) + max([inner, *experts])

    def wrapper_options(self) -> dict[str, Any]:
        head = self.filter_bank
        options: dict[str, Any] = {
            "filters": head.num_filters, "taps": head.taps, "hidden": head.hidden,
        }  # fmt: skip
        if head.num_experts:
            options["experts"] = [_expert_spec(e) for e in head.experts]
        if isinstance(head, InputStatisticsFilterBankHead):
            options["input_statistics"] = True
        if isinstance(head, ClassifierFilterBankHead):
            c = head.classifier
            options["classifier"] = c.record()
        if isinstance(head, CompactClassifierFilterBankHead):
            options["gate_descriptor"] = "compact"
        if isinstance(head, ROUTED_HEADS):
            options["routed_gate"] = True
            if head.statistics_terms:
                options["gate_statistics"] = True
            if head.told_gate is not None:
                options["told_gate"] = True
        return options

    def candidate_names(self) -> list[str]:
        """The candidates in the head's order: the network's output, the input, the filters,
        the experts (by registered name; ``… (expert e)`` where two share one)."""
        head = self.filter_bank
        filters = [f"filter {k}" for k in range(1, head.num_filters + 1)]
        experts = [_expert_name(e) for e in head.experts]
        experts = [
            f"{name} (expert {e})" if experts.count(name) > 1 else name
            for e, name in enumerate(experts, start=1)
        ]
        return ["network output", "input", *filters, *experts]

    def set_inference_options(self, **options: Any) -> None:
        """``task``: the input's degradation as the user knows it — a task name (an alias such
        as ``dehazing`` too), ``a+b`` for several, ``None`` to let the classifier decide again.
        The head's routed gate then mixes that class's gate alone (equally, for several)
        instead of routing by its classifier's probabilities. Every option, ``task`` too, also
        goes to the network when it takes options (:class:`~aioir.models.protocols.
        InferenceConfigurable`); ConfigError for a task the classifier does not know, a head
        without a routed gate, or an option nobody takes."""
        network = self.restorer
        rest = {k: v for k, v in options.items() if k != "task"}
        if isinstance(network, InferenceConfigurable):
            network.set_inference_options(**options)
        elif rest:
            unused = ", ".join(sorted(rest))
            raise ConfigError(
                f"the network ({type(network).__name__}) takes no inference options ({unused})"
            )
        if "task" in options:
            self._tell_task(options["task"])

    def _tell_task(self, task: str | None) -> None:
        """Route the head to ``task``'s classes (:meth:`set_inference_options`)."""
        head = self.filter_bank
        if not isinstance(head, ROUTED_HEADS):
            raise ConfigError(
                "this filter-bank head has no gate per degradation class: it cannot be told the "
                "task"
            )
        classes = list(head.classifier.classes)
        if task is None:
            head.give_classes([])
            return
        whole = canonical_task(str(task))  # a class may hold a '+' (noise+jpeg)
        parts = [whole] if whole in classes else task_parts(whole)
        unknown = [p for p in parts if p not in classes]
        if unknown or not parts:
            raise ConfigError(
                f"the filter-bank head knows the tasks {', '.join(classes)}; not {task!r}"
            )
        head.give_classes([classes.index(p) for p in parts])

    def describe_decisions(self) -> list[str]:
        """Per image of the last restoration, the candidates the head chose, heaviest first
        (those of weight ≥ 0.01; :class:`~aioir.models.protocols.DecisionReporter`), and, when
        the gate reads a degradation classifier, its two likeliest classes (or the task the
        user gave, :meth:`set_inference_options`)."""
        weights = self.filter_bank.last_weights
        if weights is None:
            return []
        names = self.candidate_names()
        classifier = getattr(self.filter_bank, "classifier", None)
        verdicts = None if classifier is None else classifier.last_logits
        lines = []
        for i, row in enumerate(weights.float()):
            order = row.argsort(descending=True, stable=True).tolist()
            kept = [f"{names[j]} {float(row[j]):.2f}" for j in order if row[j] >= 0.01]
            line = "filter bank: " + ", ".join(kept)
            given = getattr(self.filter_bank, "given_classes", [])
            if given:  # what the user said the image is
                line += " (told: " + ", ".join(classifier.classes[k] for k in given) + ")"
            elif verdicts is not None and i < len(verdicts):  # what the gate read it as
                p = verdicts[i].float().softmax(dim=0)
                top = p.argsort(descending=True)[:2].tolist()
                line += " (classifier: " + ", ".join(
                    f"{classifier.classes[k]} {float(p[k]):.2f}" for k in top
                ) + ")"  # fmt: skip
            lines.append(line)
        return lines

    def suggested_task(self) -> TaskSuggestion | None:
        """The hint after a blind restoration (:class:`~aioir.models.protocols.TaskSuggester`):
        of the classes not in :data:`NEVER_SUGGESTED` that the classifier gives at least
        :data:`SUGGEST_MIN_PROBABILITY`, the likeliest whose told choice
        (:meth:`~aioir.nn.filter_bank.RoutedClassifierFilterBankHead.told_choice`) moves at
        least :data:`SUGGEST_MIN_CHANGE` of the candidates' weight — a photo read as hazy that
        the head, unsure, left nearly as it was; ``sure`` from :data:`FOLLOW_MIN_PROBABILITY`
        up. ``None`` when told, when no class qualifies,
        for a head without a routed gate, or before any restoration. The first image's."""
        head = self.filter_bank
        descriptor = head.last_descriptor
        if not isinstance(head, ROUTED_HEADS) or descriptor is None or head.given_classes:
            return None
        descriptor = descriptor[:1]
        classes = head.classifier.classes
        with torch.no_grad():
            p = dict(zip(classes, head.log_routes(descriptor)[0].exp().tolist(), strict=True))
            change = dict(zip(classes, head.told_changes(descriptor)[0].tolist(), strict=True))
        task = hint_for(p, change)
        if task is None:
            return None
        return TaskSuggestion(task, p[task], change[task], p[task] >= FOLLOW_MIN_PROBABILITY)

    def head_inputs(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """What the head chooses from for ``x`` (sides multiples of :attr:`size_multiple`):
        the network's output, ``x``, the features and the context map — the network run, the
        candidates not (a fit scores each of them itself)."""
        maps = self.restorer.forward_padded_with_maps(x)
        return maps.image, x, maps.features, maps.context

    def forward_padded(self, x: Tensor) -> Tensor:
        """Restore an input whose sides are multiples of :attr:`size_multiple`."""
        return self.filter_bank(*self.head_inputs(x))

    def forward(self, x: Tensor) -> Tensor:
        """Restore ``x`` (B×C×H×W, any H, W); returns the same shape."""
        xp, size = pad_to_multiple(x, self.size_multiple)
        return unpad(self.forward_padded(xp), size)


#: :meth:`FilterBankRestorer.suggested_task`: the least probability of a class it names, and the
#: least share of the candidates' weight that telling it must move. Chosen in run 70 on the val
#: photos (crops, and whole rendered pale, high-key and dark), every hint followed: the best or
#: tied of a 5 × 7 grid on all four (the bar only reports)
SUGGEST_MIN_PROBABILITY, SUGGEST_MIN_CHANGE = 0.5, 0.7

#: the least probability of a hint that may be followed unseen (``TaskSuggestion.sure``;
#: ``aioir restore --follow-hint``). Chosen in run 71 on the val photos from every image's told
#: scores (``benchmarks/bar_oracle.py``, ``benchmarks/hint_sweep.py``, 0.5–0.95): the best mean
#: floored gain over the five val sets (crops, whole, dark, pale, high-key), each within 0.02 dB
#: of the blind restoration or above it; from 0.5 on, pale and high-key scenes lose 4 dB
FOLLOW_MIN_PROBABILITY = 0.9

#: the classes a hint never names: ``clean`` (nothing to restore) and ``rain``: on the val
#: photos (run 71, every hint followed through ``aioir evaluate --follow-hint``) each of its
#: hints was on a pale photo, every one lost when followed (26.2 → 14.1 dB at worst), while the
#: blind rain column stays far over its goal
NEVER_SUGGESTED = frozenset({"clean", "rain"})


def hint_for(
    probabilities: Mapping[str, float],
    changes: Mapping[str, float],
    *,
    min_probability: float = SUGGEST_MIN_PROBABILITY,
    min_change: float = SUGGEST_MIN_CHANGE,
    never: Collection[str] = NEVER_SUGGESTED,
) -> str | None:
    """The hint rule (:meth:`FilterBankRestorer.suggested_task`; ``benchmarks/hint_sweep.py``
    tries others): of the classes not in ``never`` given at least ``min_probability``, the
    likeliest whose told choice moves at least ``min_change`` (``changes``); else ``None``."""
    for name, p in sorted(probabilities.items(), key=lambda kv: -kv[1]):
        if p < min_probability:
            break
        if name not in never and changes[name] >= min_change:
            return name
    return None


#: the attribute holding an expert's label (what ``--explain`` calls it: "noise expert")
EXPERT_LABEL = "aioir_label"


def label_expert(expert: nn.Module, label: str | None) -> nn.Module:
    """``expert`` with ``label`` (:data:`EXPERT_LABEL`; ``None``: left as it is)."""
    if label is not None:
        setattr(expert, EXPERT_LABEL, str(label))
    return expert


def store_expert_as(expert: nn.Module, storage: str | None) -> nn.Module:
    """``expert`` with its weights saved in ``storage`` (a key of
    :data:`~aioir.models.checkpoints.STORAGE_DTYPES`, e.g. ``"float16"``: half the file; it runs
    in its own dtype after loading), its floating-point weights and buffers rounded through that
    dtype in place — what they are once saved and loaded back, so a fit measures the expert that
    ships; ``None``: left as it is."""
    if storage is None:
        return expert
    _mark_storage(expert, storage)
    with torch.no_grad():
        for tensor in [*expert.parameters(), *expert.buffers()]:
            if tensor.is_floating_point():
                tensor.copy_(tensor.to(STORAGE_DTYPES[storage]))
    return expert


def _mark_storage(expert: nn.Module, storage: str) -> None:
    """Name ``storage`` as the dtype :func:`~aioir.models.checkpoints.save_pretrained` writes
    ``expert``'s weights in (its weights left as they are)."""
    if storage not in STORAGE_DTYPES:
        raise ConfigError(
            f"an expert's storage must be one of {', '.join(STORAGE_DTYPES)}: got {storage!r}"
        )
    setattr(expert, STORAGE_DTYPE, str(storage))


def _expert_spec(expert: nn.Module) -> dict[str, Any]:
    """The saved record of an expert: its :func:`create_model` record (and ``self_ensemble``,
    the mode, for one run as a :class:`~aioir.nn.ensemble.GeometricEnsemble`; ``grey``, its
    black-and-white twin's record, for a :class:`~aioir.nn.grey_twin.GreyTwin`; ``label``, when
    it has one; ``storage``, the dtype its weights are saved in, when not the default)."""
    label = getattr(expert, EXPERT_LABEL, None)
    storage = getattr(expert, STORAGE_DTYPE, None)
    if isinstance(expert, GreyTwin):
        spec = {**_expert_spec(expert.colour), "grey": _expert_spec(expert.grey)}
    elif isinstance(expert, GeometricEnsemble):
        spec = {**_expert_spec(expert.module), "self_ensemble": expert.mode}
    else:
        config = getattr(expert, "aioir_config", None)
        if not isinstance(config, Mapping):
            raise ConfigError(
                f"a {type(expert).__name__} expert cannot be saved: build it with "
                "aioir.models.create_model (or load_model), which records what it is"
            )
        spec = {k: config[k] for k in ("architecture", "preset", "overrides")}
    if storage is not None:
        spec["storage"] = storage
    return spec if label is None else {**spec, "label": label}


def expert_identity(expert: nn.Module) -> str:
    """What an expert is, as canonical JSON: its saved record without its label or storage
    dtype (:func:`_expert_spec`) and its weights' fingerprint — equal for the same expert in
    two heads, whatever it is called there."""
    spec = {k: v for k, v in _expert_spec(expert).items() if k not in ("label", "storage")}
    return json.dumps({**spec, "weights": weights_fingerprint(expert)}, sort_keys=True)


def _expert_name(expert: nn.Module) -> str:
    """An expert's label if it has one (:data:`EXPERT_LABEL`), else its registered name (its
    class name when it was not built by name), with its self-ensemble mode if it has one."""
    label = getattr(expert, EXPERT_LABEL, None)
    if label is not None:
        return str(label)
    if isinstance(expert, GreyTwin):
        return f"{_expert_name(expert.colour)} (grey twin {_expert_name(expert.grey)})"
    if isinstance(expert, GeometricEnsemble):
        return f"{_expert_name(expert.module)} (self-ensemble {expert.mode})"
    config = getattr(expert, "aioir_config", None)
    if isinstance(config, Mapping) and "architecture" in config:
        return registered_name(str(config["architecture"]), str(config.get("preset", "paper")))
    return type(expert).__name__


def _build_expert(spec: Mapping[str, Any]) -> nn.Module:
    """An expert (random weights) from its saved record (:func:`_expert_spec`)."""
    if "storage" in spec:  # its saved weights replace the random ones: marked, not rounded
        expert = _build_expert({k: v for k, v in spec.items() if k != "storage"})
        _mark_storage(expert, spec["storage"])
        return expert
    if "grey" in spec:
        colour = {k: v for k, v in spec.items() if k not in ("grey", "label")}
        twin = GreyTwin(_build_expert(colour), _build_expert(spec["grey"]))
        return label_expert(twin, spec.get("label"))
    try:
        name = registered_name(str(spec["architecture"]), str(spec.get("preset", "paper")))
    except KeyError as exc:
        raise ConfigError(
            f"a filter-bank expert needs an 'architecture': got {dict(spec)}"
        ) from exc
    expert = create_model(name, **dict(spec.get("overrides") or {}))
    mode = spec.get("self_ensemble")
    expert = expert if mode is None else GeometricEnsemble(expert, str(mode))
    return label_expert(expert, spec.get("label"))


def _build_classifier(spec: Mapping[str, Any]) -> DegradationClassifier:
    """A degradation classifier (random weights) from its saved record."""
    optional = ("widths", "hidden", "highlight_powers", "shadow_powers", "shadow_bands")
    unknown = sorted(set(spec) - {"classes", *optional})
    if unknown or "classes" not in spec:
        raise ConfigError(
            f"a filter-bank classifier needs classes (and optionally {', '.join(optional)}): "
            f"got {dict(spec)}"
        )
    options = {k: spec[k] for k in optional if k in spec}
    return degradation_classifier(list(spec["classes"]), **options)


def legacy_wrapper_spec(overrides: dict[str, Any]) -> dict[str, Any] | None:
    """Remove the format-1 head arguments from ``overrides`` (in place) and return the wrapper
    spec they meant, or ``None`` when there was no head (``filter_bank`` absent or 0)."""
    filters = int(overrides.pop("filter_bank", 0) or 0)
    taps = int(overrides.pop("filter_taps", 15))
    if filters <= 0:
        return None
    return {"name": "filter_bank", "filters": filters, "taps": taps, "hidden": 64}


def nest_legacy_state(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Format-1 weights of a model with a head (network keys at the top level beside
    ``filter_bank.*``) laid out as :class:`FilterBankRestorer`'s (``restorer.*``)."""
    return {k if k.startswith("filter_bank.") else f"restorer.{k}": v for k, v in state.items()}


def reject_legacy_overrides(overrides: Mapping[str, Any]) -> None:
    """:class:`ConfigError` when ``overrides`` hold the old head arguments."""
    legacy = [k for k in LEGACY_OVERRIDES if k in overrides]
    if legacy:
        raise ConfigError(
            f"{legacy[0]!r} is no longer a model argument: the filter bank is a wrapper — "
            "load a saved filter-bank model, fit one with `aioir fit-filter-bank`, or build "
            "aioir.models.FilterBankRestorer(model, filters=K)"
        )
