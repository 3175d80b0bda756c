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
   L1 loss on the mixed image (tried first, in Lightning) did not do in 600 steps. The head
   returns the weighted *mix*, though, and a small weight on a far-off candidate costs the mix
   far more than its share of the expected PSNR: ``gate_mixture_weight`` blends in a lower
   bound on the mix's PSNR (:func:`choice_score`; run 40).
3. **Validation** (for the record): the data's validation crops, scored per task without a
   trainer (:mod:`aioir.engine.validation`), the ``val/*`` keys a training run records.

The result is a saved-model folder (:func:`aioir.models.save_model`): the wrapped weights, the
base model's artefacts (UDAIR's source bank) and metadata, plus ``filter_bank`` (this fit's
record) and ``val``. The config (:class:`FilterBankFitConfig`, a YAML file such as
``configs/udair/filter-bank.yaml``) reuses the training config's ``data`` section.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import logging
import math
import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from aioir.data.synthetic import TaskSpec
from aioir.data.task_specs import parse_task_specs
from aioir.degradations import available_degradations
from aioir.engine.config import PLAIN_LOOP_PRECISIONS, DataConfig, build_config, read_yaml
from aioir.engine.degradation_classifier import ClassifierOptions, untrained_classifier
from aioir.errors import ConfigError
from aioir.metrics import psnr
from aioir.models.checkpoints import STORAGE_DTYPES
from aioir.nn.degradation_classifier import DegradationClassifier
from aioir.nn.filter_bank import (
    ROUTED_HEADS,
    FilterBankHead,
    LeastSquaresFilterFit,
    ToldGate,
    told_routes,
)

if TYPE_CHECKING:
    from aioir.models import FilterBankRestorer

__all__ = [
    "ChoiceScoring", "FilterBankFitConfig", "FilterBankOptions", "FitModelConfig", "FitResult",
    "FitRuntimeConfig", "FitValidationConfig", "GateExamples", "candidate_ids", "candidate_keys",
    "filter_bank_groups", "fit", "fit_filters", "fit_gate", "gate_examples",
    "input_only_examples", "load_fit_config", "merge_examples", "read_gate_examples",
    "read_part", "reseed_gate", "saved_gate_examples", "start_gates_from", "stored_classifier", "unfitted_head",
    "wrap_in_filter_bank", "write_part",
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
    (:func:`fit_gate`). ``gate_components`` (the gate reads that many principal axes of the
    descriptors) and ``gate_members`` (a bagged gate of that many members, saved as one of
    ``members × hidden`` width) keep it from separating its examples too sharply.
    ``gate_input_weight`` (with input terms: a classifier's or the input statistics) scales
    those terms after normalisation — under weight decay, a gate leans on a term in proportion
    to its scale, so > 1 makes it trust a classifier trained on many thousands of crops more
    than the network's few hundred pooled features, fitted on its ~1,000 examples.
    ``gate_floor_weight`` λ: each candidate's score is charged λ dB more per dB it falls under
    the input's on that example (the selection measure's floor, per example; 0: off), both
    capped at ``gate_floor_cap`` dB (default ``score_cap``: then a crop whose input is above
    the cap charges nothing — a higher floor cap lets the gate see what it loses on a nearly
    clean crop while its expected score stays capped); ``gate_floor_inputs`` ``[low, high]``
    dB (default: every example) charges it only on the examples whose input scores in that
    range — e.g. from the score cap to the floor cap: the nearly clean degraded crops alone,
    where every candidate looks alike to the capped objective, and not the clean ones.
    ``gate_mixture_weight`` α: what the gate maximises per example (:func:`choice_score`) —
    the expected score of one candidate (α = 0, every fit before run 40), a lower bound on the
    PSNR of the mix the head returns (α = 1), or the blend ``(1 − α)·expected + α·bound``;
    ``gate_mixture_min_input`` (dB; default: every example): α only on the examples whose
    input scores at least that much (elsewhere the expected score) — a stray weight on a
    far-off candidate costs most where the input is already good. ``gate_mixture_score``:
    what α blends in — ``bound`` (Jensen's lower bound from the candidates' scores alone, runs
    40–60) or ``exact`` (the mix's own PSNR from the Gram matrix of the candidates' errors,
    :func:`mixture_psnr`; examples files written before run 61 lack it and are made again),
    its PSNR capped at ``gate_mixture_cap`` dB (default ``score_cap``; with exact scores only):
    a stray weight on a nearly clean crop costs the mix little under a 41-dB cap and a few dB
    over it. ``gate_exact_tasks``: the examples of these tasks are charged the exact PSNR
    (with α = ``gate_exact_weight``, default ``gate_mixture_weight``, whatever their input
    scores), the others as ``gate_mixture_score`` and ``gate_mixture_min_input`` say — where a
    mix pays (a dark crop brightened by two candidates) and where it misleads (run 61) differ
    by task. ``gate_seed``: the gate's first layer drawn again from this seed
    (:func:`reseed_gate`; default: as the fit's seed left it) — the same examples fitted from
    another start, to see how far the fit alone moves a score. ``gate_start``: a saved
    filter-bank model (its folder) whose gates the fit starts from instead
    (:func:`start_gates_from`): its first layers, and its last layers' rows for the candidates
    both heads have; a new candidate starts unused but reachable — so a candidate added to a
    shipped head is fitted as a change to that head's choices, not as a new gate whose
    random start alone moves photos it never touches (run 67).

    ``input_statistics``: the gate also reads the input's classical statistics (noise level,
    dark channel, exposure; :class:`~aioir.nn.filter_bank.InputStatisticsFilterBankHead`).
    They are computed from the crops alone, so stored examples serve either head.

    ``classifier``: the gate also reads a degradation classifier's verdict on the input
    (:class:`~aioir.nn.filter_bank.ClassifierFilterBankHead`), a classifier trained first, on
    synthetic crops of the training photos labelled by task (the options of
    :class:`~aioir.engine.degradation_classifier.ClassifierOptions`, e.g. ``{steps: 8000}``;
    ``{}`` for the defaults), in its own seeded generator. ``gate_descriptor: compact`` (with
    a classifier): the gate reads only the classifier and the blur and change terms
    (:class:`~aioir.nn.filter_bank.CompactClassifierFilterBankHead`), not the network's pooled
    features. ``routed_gate: true`` (with a classifier): one gate per degradation
    class, their choices mixed by the classifier's probabilities
    (:class:`~aioir.nn.filter_bank.RoutedClassifierFilterBankHead`), so each class's gate
    learns from the examples the classifier gives it. ``told_gate: true`` (with a routed
    gate): a second gate for inputs whose degradation the user names (``aioir restore
    --task``), fitted on the same examples with each one's classifier verdict replaced by its
    true task (:func:`fit_told_gate`); the blind gate is the same with or without it.
    ``gate_statistics: true`` (with a routed gate): its gates also read the input's classical
    statistics and the shadows of three horizontal bands before the classifier's verdict
    (:class:`~aioir.nn.filter_bank.StatisticsRoutedClassifierFilterBankHead`; computed from
    the crops alone), so a class's gate can weigh what it does by what the input shows; with
    ``gate_start`` a head without them, the gates start as that head's with zero weight on
    the new terms. None of these changes the stored examples.

    ``experts``: saved models (folders or files, e.g. ``aioir train``'s export of a small
    denoiser) or registered models without weights (``dark-channel-prior``) that join the
    candidates, frozen (:class:`~aioir.nn.filter_bank.FilterBankHead`); an entry ``{model:
    PATH, self_ensemble: flips}`` runs that expert as a geometric self-ensemble
    (:class:`~aioir.nn.ensemble.GeometricEnsemble`, ``flips`` or ``all``); ``storage:
    float16`` saves that expert's weights in half precision (half its share of the file): its
    weights are rounded to that dtype when loaded for the fit, so the fit scores and gates the
    expert that ships.

    ``gate_examples_file``: a ``.safetensors`` file for the gate examples (descriptors and
    uncapped candidate scores, one column per candidate). When it holds the examples of the
    same model, data, seed and filters, they are read instead of restoring the crops again (the
    slow part of a fit), so gate settings (``hidden`` aside: ``gate_*``, ``score_cap``,
    ``output_margin``) compare in minutes; an expert the file has no column for is scored on
    the crops alone (the network is not run: the descriptor does not depend on the experts),
    so adding or swapping an expert costs that expert's time. Otherwise they are computed and
    written there, with the random generator's state after them (the gate's reset draws from
    it next), so either way the fit gives the same model — with an added expert, the model a
    fit of the file's first expert list would give with the new column (building experts
    draws from the generator). An expert is known by its entry (path and self-ensemble), as
    the network is by its path.

    ``parts_file``: a ``.safetensors`` file for the fitted filters and the degradation
    classifier, each under the stamp of what it is fitted from (the data section, the seed and
    its own options: the filters' ``task``, ``severity_bins``, ``taps``, ``patches`` and
    ``patch_size``; the classifier's options); a part whose stamp matches is read instead of
    fitted again (the filters take minutes, the classifier as long), else fitted and written
    there. Either way the fit gives the same model: the classifier draws from a generator of
    its own, and the filters are read only where the fit reaches them in the random state they
    were fitted in (they keep the state fitting them left).

    ``extra_gate_data``: more gate crops from variants of the training data, appended to the
    gate's examples: each entry ``{data: {…}, items_per_task: N, salt: S, examples_file:
    PATH}`` draws ``N`` crops per task (default ``gate_items_per_task``) with the ``data``
    section's keys overridden (e.g. ``{pale: 0.5}``: pale scenes that are their own target) and
    seed salt ``S`` (default ``5 + its index``; the main crops use 4), restores them with the
    same network, filters and experts, and keeps them in its own ``examples_file`` as
    ``gate_examples_file`` keeps the main ones. The filters are fitted on the main data alone.
    ``extra_gate_weight``: how much each extra example counts in the gate's objective against
    a main one (a few hundred pale crops beside a thousand main ones: > 1 makes the gate care
    about that kind as much as the main mix); an entry's own ``weight`` replaces it for that
    entry's examples (sets of examples that pull the gate opposite ways — dark scenes meant
    dark against under-exposed ones — balanced without drawing new crops).

    Per task (the names of ``data.tasks``): ``gate_task_weights`` ``{task: w}`` counts every
    example of that task, main or extra, ``w`` times more (on top of ``extra_gate_weight``) —
    e.g. ``{haze: 3}`` so that the pale clean crops that look hazy do not teach the gate to give
    haze up; ``gate_target_tasks`` limits the cross-entropy term to those tasks' examples (empty:
    every example), each still counted as in the whole mean — e.g. ``[haze]`` revives a
    collapsed dehazer without pulling noisy crops off the noise expert.
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
    gate_members: int = 1
    gate_components: int | None = None
    gate_input_weight: float = 1.0
    gate_floor_weight: float = 0.0
    gate_floor_cap: float | None = None
    gate_floor_inputs: tuple[float, float] | None = None
    gate_mixture_weight: float = 0.0
    gate_mixture_min_input: float | None = None
    gate_mixture_score: str = "bound"
    gate_mixture_cap: float | None = None
    gate_exact_tasks: list[str] = dataclasses.field(default_factory=list)
    gate_exact_weight: float | None = None
    gate_seed: int | None = None
    gate_start: str | None = None
    score_cap: float = 60.0
    output_margin: float = 0.0
    input_statistics: bool = False
    classifier: dict[str, Any] | None = None
    gate_descriptor: str = "full"
    routed_gate: bool = False
    told_gate: bool = False
    gate_statistics: bool = False
    experts: list[str | dict[str, Any]] = dataclasses.field(default_factory=list)
    gate_examples_file: str | None = None
    parts_file: str | None = None
    extra_gate_data: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    extra_gate_weight: float = 1.0
    gate_task_weights: dict[str, float] = dataclasses.field(default_factory=dict)
    gate_target_tasks: list[str] = dataclasses.field(default_factory=list)

    @property
    def needs_gram(self) -> bool:
        """Whether the gate's objective reads the Gram matrices of the candidates' errors."""
        exact = self.gate_mixture_score == "exact" or bool(self.gate_exact_tasks)
        return self.gate_mixture_weight > 0 and exact


#: FilterBankOptions fields that change only the gate's training, not its examples
GATE_ONLY_OPTIONS = (
    "gate_epochs", "gate_lr", "gate_weight_decay", "gate_target_weight",
    "gate_target_temperature", "gate_members", "gate_components", "gate_input_weight",
    "gate_floor_weight", "gate_floor_cap", "gate_floor_inputs", "gate_mixture_weight",
    "gate_mixture_min_input", "gate_mixture_score", "gate_mixture_cap", "gate_exact_tasks",
    "gate_exact_weight", "gate_seed", "gate_start",
    "score_cap", "output_margin", "gate_examples_file",
    "extra_gate_data", "extra_gate_weight", "gate_task_weights", "gate_target_tasks", "told_gate",
)  # fmt: skip

#: the keys of an ``extra_gate_data`` entry
EXTRA_GATE_DATA_KEYS = ("data", "items_per_task", "salt", "examples_file", "weight")


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
        if fb.gate_members < 1:
            raise bad("filter_bank.gate_members", "must be ≥ 1")
        if fb.gate_components is not None and fb.gate_components < 1:
            raise bad("filter_bank.gate_components", "must be ≥ 1 (or null: every term)")
        if not fb.gate_input_weight > 0:
            raise bad("filter_bank.gate_input_weight", "must be > 0")
        if not fb.extra_gate_weight > 0:
            raise bad("filter_bank.extra_gate_weight", "must be > 0")
        if fb.gate_floor_weight < 0:
            raise bad("filter_bank.gate_floor_weight", "must be ≥ 0")
        if fb.gate_floor_cap is not None and not fb.gate_floor_cap > 0:
            raise bad("filter_bank.gate_floor_cap", "must be > 0 dB")
        if not 0.0 <= fb.gate_mixture_weight <= 1.0:
            raise bad("filter_bank.gate_mixture_weight", "must lie in [0, 1]")
        if fb.gate_mixture_min_input is not None and not fb.gate_mixture_weight:
            raise bad("filter_bank.gate_mixture_min_input", "needs gate_mixture_weight > 0")
        if fb.gate_mixture_score not in ("bound", "exact"):
            raise bad("filter_bank.gate_mixture_score", "must be bound or exact")
        if fb.gate_mixture_cap is not None and not fb.needs_gram:
            raise bad("filter_bank.gate_mixture_cap", "caps the exact score: needs "
                      "gate_mixture_score: exact or gate_exact_tasks")  # fmt: skip
        if fb.gate_exact_tasks and not fb.gate_mixture_weight:
            raise bad("filter_bank.gate_exact_tasks", "needs gate_mixture_weight > 0")
        if fb.gate_exact_weight is not None:
            if not fb.gate_exact_tasks:
                raise bad("filter_bank.gate_exact_weight", "weighs gate_exact_tasks' exact "
                          "term: name those tasks")  # fmt: skip
            if not 0.0 < fb.gate_exact_weight <= 1.0:
                raise bad("filter_bank.gate_exact_weight", "must lie in (0, 1]")
        if fb.gate_seed is not None and (not isinstance(fb.gate_seed, int) or fb.gate_seed < 0):
            raise bad("filter_bank.gate_seed", "must be an integer ≥ 0")
        starts_elsewhere = fb.gate_seed is not None or fb.gate_members != 1 or fb.gate_components
        if fb.gate_start is not None and starts_elsewhere:
            raise bad("filter_bank.gate_start", "starts the gate from a saved one: leave "
                      "gate_seed, gate_members and gate_components at their defaults")  # fmt: skip
        if fb.gate_floor_inputs is not None:
            low, high = fb.gate_floor_inputs
            if not fb.gate_floor_weight:
                raise bad("filter_bank.gate_floor_inputs", "needs gate_floor_weight > 0")
            if not low < high:
                raise bad("filter_bank.gate_floor_inputs", "give [low, high] dB with low < high")
        if fb.gate_target_weight < 0:
            raise bad("filter_bank.gate_target_weight", "must be ≥ 0")
        if fb.gate_target_temperature <= 0:
            raise bad("filter_bank.gate_target_temperature", "must be > 0 (dB)")
        if fb.taps < 1 or fb.taps % 2 == 0:
            raise bad("filter_bank.taps", "must be a positive odd number")
        if fb.gate_descriptor not in ("full", "compact"):
            raise bad("filter_bank.gate_descriptor", "expected full or compact")
        if fb.gate_descriptor == "compact" and fb.classifier is None:
            raise bad("filter_bank.gate_descriptor", "compact reads a classifier: set one")
        if fb.routed_gate and fb.classifier is None:
            raise bad("filter_bank.routed_gate", "a routed gate reads a classifier: set one")
        if fb.told_gate and not fb.routed_gate:
            raise bad("filter_bank.told_gate", "a told gate belongs to a routed gate: set one")
        if fb.gate_statistics and not fb.routed_gate:
            raise bad("filter_bank.gate_statistics", "they belong to a routed gate: set one")
        if fb.classifier is not None:
            if fb.input_statistics:
                raise bad("filter_bank.classifier", "a gate reads input_statistics or a "
                          "classifier, not both")  # fmt: skip
            self.classifier_options(where)
        for i, item in enumerate(fb.experts):
            expert_entry(item, f"{where}: filter_bank.experts[{i}]")
        for i in range(len(fb.extra_gate_data)):
            self.extra_data(i, where)
        tasks = set(gate_example_tasks(parse_task_specs(self.data.tasks), fb))
        for key, named in (("gate_task_weights", fb.gate_task_weights),
                           ("gate_target_tasks", fb.gate_target_tasks),
                           ("gate_exact_tasks", fb.gate_exact_tasks)):  # fmt: skip
            for task in set(named) - tasks:
                raise bad(f"filter_bank.{key}", f"no task {task!r} in the gate's examples "
                          f"(have {', '.join(sorted(tasks))})")  # fmt: skip
        for task, weight in fb.gate_task_weights.items():
            if not isinstance(weight, int | float) or not weight > 0:
                raise bad(f"filter_bank.gate_task_weights.{task}", "must be a number > 0")
        get_protocol(self.validation.protocol)
        if self.validation.precision not in PLAIN_LOOP_PRECISIONS:
            raise bad("validation.precision", f"expected {' or '.join(PLAIN_LOOP_PRECISIONS)}")
        if self.runtime.device not in ("cpu", "cuda", "auto"):
            raise bad("runtime.device", "expected cpu, cuda or auto")
        return self

    def classifier_options(self, where: str = "config") -> ClassifierOptions | None:
        """``filter_bank.classifier`` as checked options (``None``: the gate reads none)."""
        raw = self.filter_bank.classifier
        if raw is None:
            return None
        key = f"{where}: filter_bank.classifier"
        fields = {f.name for f in dataclasses.fields(ClassifierOptions)}
        if not isinstance(raw, Mapping) or set(raw) - fields:
            raise ConfigError(f"{key}: expected a mapping of {', '.join(sorted(fields))}")
        try:
            options = ClassifierOptions(**raw).validate(key)
        except TypeError as exc:
            raise ConfigError(f"{key}: {exc}") from exc
        fields = {f.name for f in dataclasses.fields(DataConfig)}
        for i, entry in enumerate(options.extra_crops):
            at = f"{key}.extra_crops[{i}].data"
            if set(entry["data"]) - fields:
                raise ConfigError(f"{at}: expected data-section keys, got {entry['data']!r}")
            dataclasses.replace(self.data, **entry["data"]).validate(at)
        return options

    def extra_data(self, index: int, where: str = "config") -> tuple[DataConfig, int, int]:
        """Entry ``index`` of ``filter_bank.extra_gate_data`` as ``(data config, crops per task,
        seed salt)``, checked."""
        key = f"{where}: filter_bank.extra_gate_data[{index}]"
        entry = self.filter_bank.extra_gate_data[index]
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{key}: expected a mapping ({', '.join(EXTRA_GATE_DATA_KEYS)})")
        unknown = sorted(set(entry) - set(EXTRA_GATE_DATA_KEYS))
        if unknown:
            raise ConfigError(f"{key}: unknown keys {unknown} ({', '.join(EXTRA_GATE_DATA_KEYS)})")
        overrides = entry.get("data") or {}
        fields = {f.name for f in dataclasses.fields(DataConfig)}
        if not isinstance(overrides, Mapping) or set(overrides) - fields:
            raise ConfigError(f"{key}.data: expected data-section keys, got {overrides!r}")
        data = dataclasses.replace(self.data, **overrides).validate(f"{key}")
        items = int(entry.get("items_per_task", self.filter_bank.gate_items_per_task))
        if items < 1:
            raise ConfigError(f"{key}.items_per_task: must be ≥ 1")
        weight = entry.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not weight > 0:
            raise ConfigError(f"{key}.weight: must be a number > 0")
        return data, items, int(entry.get("salt", 5 + index))


def gate_example_tasks(tasks: Iterable[str], options: FilterBankOptions) -> list[str]:
    """The task of every gate example, in the fit's order: ``options.gate_items_per_task``
    crops of each of ``tasks`` (``data.tasks``' names), then each ``extra_gate_data`` entry's
    ``items_per_task`` of each of its tasks (its ``data.tasks`` if it overrides them)."""
    names = list(tasks)
    out = [t for t in names for _ in range(options.gate_items_per_task)]
    for _, entry_tasks, items in _extra_entries(names, options):
        out += [t for t in entry_tasks for _ in range(items)]
    return out


def _extra_entries(
    names: Sequence[str], options: FilterBankOptions
) -> Iterator[tuple[Mapping[str, Any], list[str], int]]:
    """Each ``extra_gate_data`` entry with its tasks (its ``data.tasks``, else ``names``) and
    its crops per task."""
    for entry in options.extra_gate_data:
        overrides = entry.get("data") or {}
        entry_tasks = list(parse_task_specs(overrides["tasks"])) if "tasks" in overrides else names
        yield (
            entry,
            list(entry_tasks),
            int(entry.get("items_per_task", options.gate_items_per_task)),
        )


def extra_example_weights(options: FilterBankOptions, extra_examples: int, main: int) -> Tensor:
    """How much each of the last ``extra_examples`` gate examples (``extra_gate_data``'s, in
    order) counts: its entry's ``weight``, else ``options.extra_gate_weight``. ``main``: the
    number of main examples (``gate_items_per_task`` of each of ``data.tasks``), from which an
    entry that keeps ``data.tasks`` takes its task count."""
    tasks, rest = divmod(main, options.gate_items_per_task)
    weights = []
    for entry, entry_tasks, items in _extra_entries([""] * tasks, options):
        weight = float(entry.get("weight", options.extra_gate_weight))
        weights += [weight] * (len(entry_tasks) * items)
    if rest or len(weights) != extra_examples:
        raise ValueError(
            f"{extra_examples} extra gate examples after {main} main ones, but extra_gate_data "
            f"gives {len(weights)}"
        )
    return torch.tensor(weights)


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
    input_statistics: bool = False,
    classifier: nn.Module | None = None,
    gate_descriptor: str = "full",
    routed_gate: bool = False,
    told_gate: bool = False,
    gate_seed: int | None = None,
    gate_statistics: bool = False,
) -> FilterBankRestorer:
    """``network`` inside a new :class:`~aioir.models.FilterBankRestorer` (with ``experts``).

    The head's random initialisation (the gate's first layer, which the fit starts from) is
    the one it had when :class:`~aioir.models.Restormer` built the head itself, right after its
    U-Net: drawn from the generator seeded with ``seed`` once that U-Net's initialisation has
    been drawn, so a fit reproduces the models fitted then (v3 and v4) exactly. The global
    generator advances as if the head had been built here. Other backbones (NAFNet) keep the
    head's own initialisation. A ``gate_seed`` draws the gate's first layer again from that
    seed instead (:func:`reseed_gate`).
    """
    from aioir.models import FilterBankRestorer, Restormer

    model = FilterBankRestorer(
        network, filters, taps, hidden, experts=experts, input_statistics=input_statistics,
        classifier=classifier, gate_descriptor=gate_descriptor, routed_gate=routed_gate,
        told_gate=told_gate, gate_statistics=gate_statistics,
    )  # fmt: skip
    backbone = getattr(network, "backbone_options", None)
    if isinstance(network, Restormer) and backbone is not None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            Restormer(**backbone)
            channels = int(network.feature_channels), int(network.context_map_channels)
            stand_ins = [nn.Identity() for _ in experts]  # the gate's shape; draw nothing
            extra = {} if classifier is None else {"classifier": classifier}
            head = type(model.filter_bank)(
                *channels, filters, taps, hidden, experts=stand_ins, **extra
            )
        model.filter_bank.gate.load_state_dict(head.gate.state_dict())
    if gate_seed is not None:
        reseed_gate(model.filter_bank, gate_seed)
    return model


def reseed_gate(head: nn.Module, seed: int) -> None:
    """Draw ``head``'s gate's first layer again (PyTorch's default ``nn.Linear`` range,
    ``U(±1/√fan_in)``) from a generator of its own seeded with ``seed``; the global generator
    is left alone. The gate's last layer starts at zero (a routed gate's too), so the first
    is the whole of its random start."""
    first = head.gate[0]
    generator = torch.Generator().manual_seed(int(seed))
    bound = 1.0 / math.sqrt(first.in_features)
    with torch.no_grad():
        for tensor in (first.weight, first.bias):
            drawn = torch.empty(tensor.shape).uniform_(-bound, bound, generator=generator)
            tensor.copy_(drawn)


def candidate_keys(head: FilterBankHead) -> list[str]:
    """What each candidate of ``head`` is, comparable across heads: ``output``, ``input``,
    ``filter k`` (by position: filters fitted on the same groups) and each expert's
    :func:`~aioir.models.filter_bank.expert_identity` (its record and weights)."""
    from aioir.models.filter_bank import expert_identity

    keys = ["output", "input", *(f"filter {k}" for k in range(1, head.num_filters + 1))]
    return keys + [expert_identity(e) for e in head.experts]


def start_gates_from(head: FilterBankHead, start: FilterBankHead) -> nn.Sequential:
    """Set ``head``'s gate to ``start``'s (``filter_bank.gate_start``): the first layer as it is,
    the last layer's rows (one block of candidates per route) taken from ``start``'s rows for
    the same candidates (:func:`candidate_keys`); a candidate ``start`` lacks gets a row of zero
    weights and its block's mean bias — unused where the others are sure, reachable by the fit.
    Returns the told gate's start: ``start``'s told gate mapped the same way when both heads
    have one, else a copy of the new blind gate. ConfigError when the heads' gates differ in
    kind or shape (descriptor, width, routes). A head that reads statistics ``start``'s lacks
    (:func:`added_statistics`) starts with zero weight on them: as ``start`` chose."""
    new, old = candidate_keys(head), candidate_keys(start)
    added = added_statistics(head, start)
    same_kind = type(head) is type(start) or added > 0
    width = start.gate[0].weight.shape[1] + added
    same_shape = same_kind and head.gate[0].weight.shape == (start.gate[0].weight.shape[0], width)
    routes_new = head.gate[-1].out_features // len(new)
    routes_old = start.gate[-1].out_features // len(old)
    if not same_shape or routes_new != routes_old:
        raise ConfigError(
            f"filter_bank.gate_start: its head ({type(start).__name__}, gate "
            f"{tuple(start.gate[0].weight.shape)}, {routes_old} routes) is not this fit's "
            f"({type(head).__name__}, gate {tuple(head.gate[0].weight.shape)}, {routes_new} "
            "routes)"
        )
    rows = [old.index(k) if k in old else None for k in new]

    def mapped(gate: nn.Sequential, into: nn.Sequential) -> nn.Sequential:
        into = copy.deepcopy(into)
        into[0].load_state_dict(_widened(gate[0], added, head))
        weight = gate[-1].weight.detach().view(routes_old, len(old), -1)
        bias = gate[-1].bias.detach().view(routes_old, len(old))
        out_w = weight.new_zeros(routes_new, len(new), weight.shape[-1])
        out_b = bias.mean(dim=1, keepdim=True).repeat(1, len(new))
        for j, i in enumerate(rows):
            if i is not None:
                out_w[:, j], out_b[:, j] = weight[:, i], bias[:, i]
        with torch.no_grad():
            into[-1].weight.copy_(out_w.flatten(0, 1))
            into[-1].bias.copy_(out_b.flatten())
        return into

    head.gate = mapped(start.gate, head.gate)
    told_new, told_old = getattr(head, "told_gate", None), getattr(start, "told_gate", None)
    if told_new is not None and told_old is not None:
        return mapped(told_old.gate, head.gate)
    return copy.deepcopy(head.gate)


def added_statistics(head: FilterBankHead, start: FilterBankHead) -> int:
    """How many statistics terms ``head``'s descriptor reads that ``start``'s lacks, where
    ``head`` is ``start``'s kind with :class:`~aioir.nn.filter_bank._GateStatistics` added
    (a statistics-reading variant of a head that reads none); 0 otherwise."""
    terms = int(getattr(head, "statistics_terms", 0))
    if not terms or getattr(start, "statistics_terms", 0):
        return 0
    return terms if isinstance(head, type(start)) else 0


def _widened(first: nn.Module, added: int, head: FilterBankHead) -> dict[str, Tensor]:
    """The state of a gate's first layer (``first``) with ``added`` zero input columns where
    ``head``'s statistics terms sit: just before its classifier's ``C`` terms (the last)."""
    state = {k: v.detach().clone() for k, v in first.state_dict().items()}
    if not added:
        return state
    weight = state["weight"]
    c = head.classifier.num_classes
    zeros = weight.new_zeros(weight.shape[0], added)
    state["weight"] = torch.cat([weight[:, :-c], zeros, weight[:, -c:]], dim=1)
    return state


def _saved_head(path: str) -> FilterBankHead:
    """The filter-bank head of the saved model at ``path`` (``filter_bank.gate_start``)."""
    from aioir.models import FilterBankRestorer, load_model

    if not Path(path).is_dir():
        raise ConfigError(f"filter_bank.gate_start: {path}: no saved-model folder")
    try:
        model = load_model(path)
    except (ConfigError, OSError) as exc:
        raise ConfigError(f"filter_bank.gate_start: {exc}") from None
    if not isinstance(model, FilterBankRestorer):
        raise ConfigError(f"filter_bank.gate_start: {path} is not a filter-bank model")
    return model.filter_bank


def unfitted_head(model: FilterBankRestorer, options: FilterBankOptions, seed: int) -> nn.Module:
    """The head a fit of ``model``'s network with ``options`` and ``seed`` starts its gate from
    (the gate's first layer as initialised, before any example), with ``model``'s filters
    count, taps, experts and classifier (none when ``options.input_statistics``): what a
    gate-only refit (``benchmarks/gate_sweep.py``, ``gate_oracle.py``) trains a copy of."""
    from aioir.models import unwrap

    head = model.filter_bank
    classifier = None if options.input_statistics else getattr(head, "classifier", None)
    return wrap_in_filter_bank(
        unwrap(model), head.num_filters, head.taps, options.hidden, seed, list(head.experts),
        input_statistics=options.input_statistics, classifier=classifier,
        gate_descriptor=options.gate_descriptor, routed_gate=options.routed_gate,
        told_gate=options.told_gate, gate_seed=options.gate_seed,
        gate_statistics=options.gate_statistics,
    ).filter_bank  # fmt: skip


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
) -> tuple[Tensor, Tensor | None, Tensor, Tensor]:
    """The network terms of the descriptors (N×D, :meth:`FilterBankHead.network_terms`), their
    input terms (N×S, ``None`` when the head reads none), the candidate PSNRs (N×C, C =
    K+E+2, capped) and the Gram matrices of the candidates' errors (N×C×C, :func:`error_gram`)
    of ``loader``'s crops; :meth:`FilterBankHead.assemble` makes the descriptors."""
    network, inputs, scores, grams = [], [], [], []
    for target, padded in _crops(model, loader, "filter-bank gate examples", progress):
        y, x, features, context = model.head_inputs(padded)
        network.append(head.network_terms(y, x, features, context).float())
        if head.input_terms_size:
            inputs.append(head.input_terms(x).float())
        restored = [_candidate(head, j, y, x, target) for j in range(head.num_candidates)]
        scores.append(_scores(restored, target, score_cap))
        grams.append(error_gram(restored, target))
    inputs_or_none = torch.cat(inputs) if inputs else None
    return torch.cat(network), inputs_or_none, torch.cat(scores), torch.cat(grams)


def error_gram(candidates: Sequence[Tensor], target: Tensor) -> Tensor:
    """``G[b, j, k]``: the mean over pixels and channels of candidate ``j``'s error times
    candidate ``k``'s on image ``b`` (B×C×C, float64), for C candidates (each B×3×H×W) against
    ``target``. The diagonal is each candidate's mean squared error, and the weighted mix
    ``Σⱼ wⱼ·candidateⱼ`` (weights summing to 1) has the mean squared error ``wᵀ·G·w``
    exactly: what :func:`mixture_psnr` scores."""
    errors = torch.stack([(c - target).flatten(1) for c in candidates], dim=1).float()
    return torch.bmm(errors, errors.transpose(1, 2)).double() / errors.shape[2]


@torch.no_grad()
def input_only_examples(
    model: FilterBankRestorer,
    head: FilterBankHead,
    loader: Any,
    candidates: Sequence[int],
    progress: bool = True,
) -> tuple[Tensor, Tensor]:
    """What the gate examples hold that the input alone gives, the network not run: the
    descriptor's input terms (N×S, :meth:`FilterBankHead.input_terms`) and the PSNRs
    (N×len(candidates), uncapped) of candidates that restore the input alone (the input,
    filters, experts: not 0, the network's output) on ``loader``'s crops — what
    :func:`gate_examples` gives them."""
    if 0 in candidates:
        raise ValueError("candidate 0 is the network's output: use gate_examples")
    terms, scores = [], []
    for target, padded in _crops(model, loader, "input-only gate examples", progress):
        terms.append(head.input_terms(padded).float())
        restored = (_candidate(head, j, padded, padded, target) for j in candidates)
        scores.append(_scores(restored, target, float("inf")))  # (one candidate at a time)
    return torch.cat(terms), torch.cat(scores)


def _crops(model: FilterBankRestorer, loader: Any, desc: str, progress: bool) -> Any:
    """(target, padded input) of each batch of ``loader``, on the head's device, with the model
    in eval mode (restored afterwards)."""
    from aioir.nn.padding import pad_to_multiple

    was_training = model.training
    device = model.filter_bank.filters.device
    model.eval()
    try:
        for batch in tqdm(loader, desc=desc, disable=not progress, leave=False):
            padded, _ = pad_to_multiple(batch["input"].to(device), model.size_multiple)
            yield batch["target"].to(device), padded
    finally:
        model.train(was_training)


def _scores(restored: Iterable[Tensor], target: Tensor, cap: float) -> Tensor:
    """PSNR of each restored candidate (:func:`_candidate`) against ``target`` (B×len),
    capped at ``cap``."""
    columns = [psnr(c, target) for c in restored]
    if not columns:
        return target.new_zeros(target.shape[0], 0)
    return torch.stack(columns, dim=1).clamp(max=cap)


def _candidate(head: FilterBankHead, j: int, y: Tensor, x: Tensor, target: Tensor) -> Tensor:
    """Candidate ``j`` as scored: cropped to ``target``'s size, float, clamped to [0, 1]."""
    h, w = target.shape[-2:]
    return head.candidate(j, y, x)[..., :h, :w].float().clamp(0, 1)


#: dB per neper of mean squared error: PSNR = −DB_PER_NEPER · ln(MSE) (+ a constant)
DB_PER_NEPER = 10.0 / math.log(10.0)


def mixture_bound(log_weights: Tensor, scores: Tensor) -> Tensor:
    """A lower bound (dB) on the PSNR of the candidates mixed with weights ``exp(log_weights)``
    (N×C), from the candidates' PSNRs ``scores`` (N×C): the PSNR of the expected squared error,
    ``−10·log₁₀ Σⱼ wⱼ·10^(−scoreⱼ/10)`` — by Jensen's inequality never above the mixed image's
    (its error is the weighted mean of the candidates' errors), equal to it when the errors
    coincide or one candidate has all the weight."""
    return -DB_PER_NEPER * torch.logsumexp(log_weights - scores / DB_PER_NEPER, dim=1)


def mixture_psnr(weights: Tensor, gram: Tensor, cap: float = math.inf) -> Tensor:
    """The PSNR (dB) of the candidates mixed with ``weights`` (N×C, each row summing to 1),
    from the Gram matrices of their errors ``gram`` (N×C×C, :func:`error_gram`): the mix's
    mean squared error is ``wᵀ·G·w``, so this is exact, not a bound. ``cap`` (dB) floors that
    error as a capped score caps the PSNR (no gradient above it)."""
    mse = torch.einsum("nj,njk,nk->n", weights, gram.to(weights.dtype), weights)
    return -DB_PER_NEPER * mse.clamp(min=10.0 ** (-cap / 10.0)).log()


def choice_score(
    weights: Tensor,
    log_weights: Tensor | None,
    scores: Tensor,
    mixture_weight: float | Tensor = 0.0,
    gram: Tensor | None = None,
    score_cap: float = math.inf,
    mixture_cap: float | None = None,
    exact: Tensor | None = None,
) -> Tensor:
    """The score (dB) of a gate's choice on each example, from its candidate ``weights`` (N×C),
    their logarithms (needed when ``mixture_weight`` > 0 without ``gram``) and the candidates'
    PSNRs ``scores`` (N×C): ``(1 − α)·Σⱼ wⱼ·scoreⱼ + α·mix`` with α = ``mixture_weight`` (one
    number, or one per example) and ``mix`` the mix's PSNR: :func:`mixture_bound` of the
    scores, or with ``gram`` (N×C×C) the exact :func:`mixture_psnr` (capped at
    ``mixture_cap``, default ``score_cap``) plus ``Σⱼ wⱼ·(scoreⱼ − PSNRⱼ)``, what the scores
    add to the candidates' PSNRs capped at ``score_cap`` (an output margin, a floor's
    charge), so that with the same cap a choice of one candidate scores its score either way.
    ``exact`` (N, bool; with ``gram``): the examples scored exactly, the bound on the others
    (default: every example exactly).

    The expected score (α = 0) is right for a choice of one candidate, but the head *mixes*
    them: a 9 % weight on a candidate 40 dB off costs the mix ~20 dB and the expected score
    3.6. The bound charges it as the mix pays for it, but it is loose where the candidates'
    errors cancel (a dehazer that overshoots mixed with one that falls short); the exact PSNR
    is neither.
    """
    expected = (weights * scores).sum(dim=1)
    if not bool(torch.as_tensor(mixture_weight).any()):
        return expected
    if gram is not None:
        own = -DB_PER_NEPER * gram.diagonal(dim1=1, dim2=2).to(scores.dtype).log()
        added = scores - own.clamp(max=score_cap)
        cap = score_cap if mixture_cap is None else mixture_cap
        mix = mixture_psnr(weights, gram, cap) + (weights * added).sum(dim=1)
        if exact is not None and not bool(exact.all()):
            if log_weights is None:
                raise ValueError("examples scored by the bound need the log weights")
            mix = torch.where(exact, mix, mixture_bound(log_weights, scores))
    elif log_weights is None:
        raise ValueError("a mixture_weight > 0 needs the log weights (or the Gram matrices)")
    else:
        mix = mixture_bound(log_weights, scores)
    return (1.0 - mixture_weight) * expected + mixture_weight * mix


@dataclasses.dataclass(frozen=True)
class ChoiceScoring:
    """How :func:`fit_gate` scores a gate's choice on its examples: :func:`choice_score` with
    these settings — ``mixture_weight`` α (one number, or one per example), the examples' Gram
    matrices ``gram`` (N×C×C) for the exact mix, ``score_cap``, ``mixture_cap`` and ``exact``
    (N, bool: the examples scored exactly). The default is the expected score."""

    mixture_weight: float | Tensor = 0.0
    gram: Tensor | None = None
    score_cap: float = math.inf
    mixture_cap: float | None = None
    exact: Tensor | None = None

    def __call__(self, weights: Tensor, log_weights: Tensor | None, scores: Tensor) -> Tensor:
        """Each example's score of the choice ``weights`` (log weights as :func:`choice_score`
        needs them)."""
        return choice_score(weights, log_weights, scores, self.mixture_weight, self.gram,
                            self.score_cap, self.mixture_cap, self.exact)  # fmt: skip

    @property
    def needs_log_weights(self) -> bool:
        """Whether some example is scored by the bound, which reads the log weights."""
        all_exact = self.gram is not None and (self.exact is None or bool(self.exact.all()))
        return bool(torch.as_tensor(self.mixture_weight).any()) and not all_exact

    def per_example(self, n: int, dtype: torch.dtype) -> ChoiceScoring:
        """These settings with α spelt out per example (``n`` of them); raises ``ValueError``
        when an α lies outside [0, 1]."""
        alpha = torch.as_tensor(self.mixture_weight, dtype=dtype).expand(n)
        if not bool(((alpha >= 0) & (alpha <= 1)).all()):
            raise ValueError(f"mixture_weight must lie in [0, 1], got {self.mixture_weight}")
        return dataclasses.replace(self, mixture_weight=alpha)

    def rows(self, index: Tensor) -> ChoiceScoring:
        """These settings for the examples ``index`` picks (the per-example ones indexed)."""
        alpha = self.mixture_weight
        return dataclasses.replace(
            self,
            mixture_weight=alpha[index] if isinstance(alpha, Tensor) else alpha,
            gram=None if self.gram is None else self.gram[index],
            exact=None if self.exact is None else self.exact[index],
        )


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
    members: int = 1,
    components: int | None = None,
    input_weight: float = 1.0,
    example_weights: Tensor | None = None,
    target_examples: Tensor | None = None,
    scoring: ChoiceScoring | None = None,
    keep_last: bool = False,
) -> float:
    """Set the descriptor normalisation from ``descriptors``, reset the gate's last layer (unless
    ``keep_last``: a gate started from a saved one, :func:`start_gates_from`) and train the
    gate full-batch to maximise the mean score of its choice, as ``scoring`` scores it
    (:class:`ChoiceScoring`; by default the expected score ``Σⱼ wⱼ·scoreⱼ``); returns that
    score at the last step (with ``members`` or ``components``: of the installed gate).

    ``target_weight`` > 0 adds that many dB times the cross-entropy between the gate's choice and
    the soft best-candidate target ``softmax(scores / target_temperature)`` (temperature in
    dB): the expected score alone saturates — a candidate whose weight collapses early gets no
    gradient back even where it is best — and the cross-entropy keeps pulling towards it.

    Two ways to keep a gate from separating its examples too sharply (a few hundred examples
    per task in a few hundred dimensions are nearly separable, and such a gate is sure of
    itself far from them):

    - ``components``: the gate reads only the first ``components`` principal axes of the
      normalised descriptors — trained as ``Linear(components, hidden)`` on the projection and
      installed as the rank-``components`` first layer ``W·Pᵀ`` it equals.
    - ``members`` > 1: a bagged gate — that many gates, each trained on a bootstrap resample
      of the examples (fresh initial weights), whose logits are averaged; installed as one gate
      of width ``members × hidden`` (hidden layers side by side, output weights ÷ ``members``),
      so the saved model is an ordinary head.

    Both draw from torch's global generator; with neither, the head's own gate is trained in
    place (as every fit before them did).

    ``input_weight``: the head's input terms (the descriptor's last
    :attr:`~aioir.nn.filter_bank.FilterBankHead.input_terms_size`) are normalised to that
    standard deviation instead of 1 (their stored scale divided by it, so the saved head
    applies it too): the same weight decay then costs the gate less per unit of their effect.

    ``example_weights`` (N): how much each example counts in the mean (all 1 by default).
    ``target_examples`` (N, bool): the examples the cross-entropy term covers (all by default);
    the others add nothing to it, the covered ones count as in the whole mean.
    """
    size = descriptors.shape[1]
    if members < 1 or (components is not None and not 1 <= components <= size):
        raise ValueError(
            f"members must be ≥ 1 and components in 1 … {size}, got {members} and {components}"
        )
    if not input_weight > 0:
        raise ValueError(f"input_weight must be > 0, got {input_weight}")
    head.set_descriptor_stats(descriptors)
    if head.input_terms_size and input_weight != 1.0:
        with torch.no_grad():
            head.descriptor_std[-head.input_terms_size :] /= input_weight
    # start from an unbiased choice: the head's "stay close to the network" initialisation
    # (output logit +5) is for gradient fine-tuning and would anchor this fit on the output
    if not keep_last:
        head.gate[-1].reset_parameters()
    inputs = head.normalize(descriptors)
    scoring = (scoring or ChoiceScoring()).per_example(len(scores), scores.dtype)
    settings = (epochs, lr, weight_decay, progress, target_weight, target_temperature)
    weights = scores.new_ones(len(scores)) if example_weights is None else example_weights
    covered = (
        scores.new_ones(len(scores)) if target_examples is None else target_examples.to(scores)
    )
    if members == 1 and components is None:
        expected = _train_gate_mlp(
            head, head.gate, inputs, descriptors, scores, weights, covered, *settings, scoring
        )
        log.info("filter-bank gate: score %.2f dB on %d crops", expected, len(scores))
        return expected
    axes = None if components is None else _principal_axes(inputs, components)
    projected = inputs if axes is None else inputs @ axes
    hidden, outputs = head.gate[0].out_features, head.gate[-1].out_features
    gates = []
    for _ in range(members):
        gate = nn.Sequential(
            nn.Linear(projected.shape[1], hidden), nn.GELU(), nn.Linear(hidden, outputs)
        )
        rows = torch.randint(len(inputs), (len(inputs),)) if members > 1 else slice(None)
        _train_gate_mlp(
            head, gate, projected[rows], descriptors[rows], scores[rows], weights[rows],
            covered[rows], *settings, scoring.rows(rows),
        )  # fmt: skip
        gates.append(gate)
    head.gate = _averaged_gate(gates, axes)
    with torch.no_grad():
        logits = head.gate(head.normalize(descriptors))  # (head.choose, with its logarithm)
        chosen, log_chosen = head.mix(logits, descriptors), head.log_mix(logits, descriptors)
        per_example = scoring(chosen, log_chosen, scores)
        expected = float((weights * per_example).sum() / weights.sum())
    log.info(
        "filter-bank gate (%d members, %s components): score %.2f dB on %d crops",
        members, components or "all", expected, len(scores),
    )  # fmt: skip
    return expected


def _train_gate_mlp(
    head: FilterBankHead,
    gate: nn.Module,
    inputs: Tensor,
    descriptors: Tensor,
    scores: Tensor,
    example_weights: Tensor,
    target_examples: Tensor,
    epochs: int,
    lr: float,
    weight_decay: float,
    progress: bool,
    target_weight: float,
    target_temperature: float,
    scoring: ChoiceScoring,
) -> float:
    """Train ``gate`` full-batch on normalised ``inputs`` (see :func:`fit_gate`), its logits
    turned into candidate weights as ``head`` turns its own (:meth:`FilterBankHead.mix`, which
    may read the raw ``descriptors``), each example counted ``example_weights`` times, the
    cross-entropy term on the examples where ``target_examples`` is 1; returns the (weighted)
    score of its choice as ``scoring`` scores it at the last step."""
    optimizer = torch.optim.AdamW(gate.parameters(), lr=lr, weight_decay=weight_decay)
    targets = (scores / target_temperature).softmax(dim=1) if target_weight > 0 else None
    uniform = bool((example_weights == 1).all())
    share = example_weights / example_weights.sum()

    def mean(values: Tensor) -> Tensor:  # (the plain mean when every weight is 1: as before)
        return values.mean() if uniform else (share * values).sum()

    expected = torch.zeros(())
    needs_log = scoring.needs_log_weights or targets is not None
    with torch.enable_grad():
        for _ in tqdm(range(epochs), desc="fitting the gate", disable=not progress, leave=False):
            logits = gate(inputs)
            weights = head.mix(logits, descriptors)
            log_weights = head.log_mix(logits, descriptors) if needs_log else None
            per_example = scoring(weights, log_weights, scores)
            expected = mean(per_example)
            loss = -expected
            if targets is not None and log_weights is not None:
                cross_entropy = mean(-(targets * log_weights).sum(dim=1) * target_examples)
                loss = loss + target_weight * cross_entropy
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return float(expected.item())


def _principal_axes(inputs: Tensor, components: int) -> Tensor:
    """The first ``components`` principal axes of ``inputs`` (N×D, already centred by the
    descriptor normalisation), D×components."""
    _, _, v = torch.linalg.svd(inputs - inputs.mean(dim=0), full_matrices=False)
    return v[:components].T.contiguous()


@torch.no_grad()
def _averaged_gate(gates: Sequence[nn.Sequential], axes: Tensor | None) -> nn.Sequential:
    """One ``Linear → GELU → Linear`` gate whose logits are the mean of ``gates``' logits,
    each gate's first layer composed with the projection ``axes`` (D×k) when given."""
    first = [g[0].weight if axes is None else g[0].weight @ axes.T for g in gates]
    out = nn.Sequential(
        nn.Linear(first[0].shape[1], sum(w.shape[0] for w in first)),
        nn.GELU(),
        nn.Linear(sum(w.shape[0] for w in first), gates[0][-1].out_features),
    )
    out[0].weight.copy_(torch.cat(first))
    out[0].bias.copy_(torch.cat([g[0].bias for g in gates]))
    out[2].weight.copy_(torch.cat([g[-1].weight for g in gates], dim=1) / len(gates))
    out[2].bias.copy_(torch.stack([g[-1].bias for g in gates]).mean(dim=0))
    return out


def train_gate(
    head: FilterBankHead,
    descriptors: Tensor,
    scores: Tensor,
    options: FilterBankOptions,
    progress: bool = False,
    extra_examples: int = 0,
    example_tasks: Sequence[str] | None = None,
    gram: Tensor | None = None,
) -> float:
    """:func:`fit_gate` on gate examples as :func:`gate_examples` made them (uncapped scores,
    and their Gram matrices ``gram``, which ``gate_mixture_score: exact`` needs),
    with ``options``' cap, output margin and gate settings; returns the expected score. The last
    ``extra_examples`` are ``extra_gate_data``'s, counted ``options.extra_gate_weight`` times
    (an entry's own ``weight`` for its examples, :func:`extra_example_weights`).
    ``example_tasks`` (each example's task, :func:`gate_example_tasks`) is needed by
    ``options.gate_task_weights`` and ``options.gate_target_tasks``.
    ``options.gate_floor_weight`` λ charges every candidate λ dB more per dB it falls under the
    input (candidate 1) on that example — the selection measure's floor, per example: a gate
    that risks a photo for a gain elsewhere is charged for the risk — comparing the scores
    capped at ``options.gate_floor_cap`` (default: the score cap), on the examples whose input
    scores in ``options.gate_floor_inputs`` (``[low, high)`` dB; default: all).
    ``options.gate_mixture_weight`` blends in the mix's PSNR bound (:func:`choice_score`), on
    the examples whose input scores at least ``options.gate_mixture_min_input`` (default: all);
    ``options.gate_mixture_score`` says which (Jensen's bound, or the exact PSNR);
    ``options.gate_exact_tasks``' examples are charged the exact PSNR whatever their input,
    blended in with α = ``options.gate_exact_weight`` (default: the mixture weight)."""
    weights = scores.new_ones(len(scores))  # (all 1: fit_gate's plain mean, as before)
    if extra_examples and any("weight" in entry for entry in options.extra_gate_data):
        main = len(scores) - extra_examples
        weights[main:] = extra_example_weights(options, extra_examples, main).to(weights)
    else:
        weights[len(scores) - extra_examples :] = options.extra_gate_weight  # (none: empty)
    covered = None
    if options.gate_task_weights or options.gate_target_tasks or options.gate_exact_tasks:
        if example_tasks is None or len(example_tasks) != len(scores):
            raise ValueError(
                f"gate_task_weights, gate_target_tasks and gate_exact_tasks need each of the "
                f"{len(scores)} examples' task, got {None if example_tasks is None else len(example_tasks)}"
            )
        weights *= scores.new_tensor([options.gate_task_weights.get(t, 1.0) for t in example_tasks])
        if options.gate_target_tasks:
            covered = torch.tensor([t in options.gate_target_tasks for t in example_tasks])
    floor_cap = options.score_cap if options.gate_floor_cap is None else options.gate_floor_cap
    floored, input_scores = scores.clamp(max=floor_cap), scores[:, 1:2]
    scores = scores.clamp(max=options.score_cap)
    if options.gate_floor_weight:
        shortfall = (floored[:, 1:2] - floored).clamp(min=0.0)
        if options.gate_floor_inputs is not None:
            low, high = options.gate_floor_inputs
            shortfall = shortfall * ((input_scores >= low) & (input_scores < high))
        scores = scores - options.gate_floor_weight * shortfall
    scores[:, 0] += options.output_margin  # the network's output: leave it only for a clear gain
    alpha = scores.new_full((len(scores),), options.gate_mixture_weight)
    if options.gate_mixture_min_input is not None:
        alpha = alpha * (input_scores[:, 0] >= options.gate_mixture_min_input)
    exact = None
    if options.gate_exact_tasks and example_tasks is not None:
        named = torch.tensor([t in options.gate_exact_tasks for t in example_tasks])
        exact_alpha = options.gate_exact_weight
        alpha = torch.where(
            named, options.gate_mixture_weight if exact_alpha is None else exact_alpha, alpha
        )
        exact = named | (options.gate_mixture_score == "exact")
    if options.needs_gram and gram is None:
        raise ValueError(
            "gate_mixture_score: exact and gate_exact_tasks need the gate examples' Gram matrices"
        )
    scoring = ChoiceScoring(alpha, gram if options.needs_gram else None, options.score_cap,
                            options.gate_mixture_cap, exact)  # fmt: skip
    return fit_gate(
        head, descriptors, scores, options.gate_epochs, options.gate_lr,
        options.gate_weight_decay, progress, options.gate_target_weight,
        options.gate_target_temperature, options.gate_members, options.gate_components,
        options.gate_input_weight, weights, covered, scoring,
        keep_last=options.gate_start is not None,
    )  # fmt: skip


# ------------------------------------------------------------------------------ the entry point
@dataclasses.dataclass
class FitResult:
    """What :func:`fit` wrote and measured."""

    output: Path
    model: nn.Module
    record: dict[str, Any]
    val: dict[str, float] | None


def fit_told_gate(
    head: FilterBankHead,
    initial_gate: nn.Sequential,
    descriptors: Tensor,
    scores: Tensor,
    options: FilterBankOptions,
    example_tasks: Sequence[str],
    progress: bool = False,
    extra_examples: int = 0,
    gram: Tensor | None = None,
) -> float:
    """Fit and install the :class:`~aioir.nn.filter_bank.ToldGate` of ``head`` (a routed
    head): :func:`train_gate` of a copy of the head, its gate reset to ``initial_gate`` (the
    blind gate's start), on the same examples with each one's classifier terms replaced by the
    :func:`~aioir.nn.filter_bank.told_routes` of its task (``example_tasks``, the classifier's
    class names), so its routing and its terms are those of a user who names the task. Draws
    from a forked generator: the rest of the fit is the same with or without it. Returns the
    told gate's expected score."""
    if not isinstance(head, ROUTED_HEADS):
        raise ConfigError("filter_bank.told_gate: the head has no routed gate")
    classes = list(head.classifier.classes)
    unknown = sorted({t for t in example_tasks if t not in classes})
    if unknown or len(example_tasks) != len(scores):
        raise ConfigError(
            f"filter_bank.told_gate: every gate example needs a task among the classifier's "
            f"classes ({', '.join(classes)}); got {', '.join(unknown) or 'too few tasks'}"
        )
    routes = torch.stack([told_routes(len(classes), [classes.index(t)]) for t in example_tasks])
    told = head.told_descriptor(descriptors, routes)
    trial = copy.deepcopy(head)
    trial.gate, trial.told_gate = copy.deepcopy(initial_gate), None
    trial.give_classes([])
    with torch.random.fork_rng(devices=[]):
        expected = train_gate(
            trial, told, scores, options, progress, extra_examples, example_tasks, gram
        )
    gate = ToldGate(trial.gate, told.shape[1]).to(trial.descriptor_mean.device)
    with torch.no_grad():
        gate.descriptor_mean.copy_(trial.descriptor_mean)
        gate.descriptor_std.copy_(trial.descriptor_std)
    head.told_gate = gate
    log.info("filter-bank told gate: score %.2f dB on %d crops", expected, len(scores))
    return expected


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
    unknown = sorted(set(item) - {"model", "self_ensemble", "label", "grey_model", "storage"})
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {unknown} "
            "(known: model, self_ensemble, label, grey_model, storage)"
        )
    storage = item.get("storage")
    if storage is not None and storage not in STORAGE_DTYPES:
        raise ConfigError(f"{where}: storage must be one of {', '.join(STORAGE_DTYPES)}")
    model, mode, label = item.get("model"), item.get("self_ensemble"), item.get("label")
    grey = item.get("grey_model")
    if grey is not None and (not isinstance(grey, str) or not grey):
        raise ConfigError(f"{where}: give the black-and-white twin as grey_model: PATH")
    if not isinstance(model, str) or not model:
        raise ConfigError(f"{where}: give the expert as model: PATH")
    if mode is not None and mode not in ENSEMBLE_MODES:
        raise ConfigError(f"{where}: self_ensemble must be one of {', '.join(ENSEMBLE_MODES)}")
    if label is not None and (not isinstance(label, str) or not label.strip()):
        raise ConfigError(f"{where}: label must be a non-empty name, e.g. 'noise expert'")
    return model, mode


def expert_grey_model(item: str | Mapping[str, Any]) -> str | None:
    """The ``grey_model`` of an entry of ``filter_bank.experts`` (a twin run instead on
    black-and-white images: :class:`~aioir.nn.grey_twin.GreyTwin`; ``None``: none), checked
    by :func:`expert_entry`."""
    return None if isinstance(item, str) else item.get("grey_model")


def expert_storage(item: str | Mapping[str, Any]) -> str | None:
    """The ``storage`` of an entry of ``filter_bank.experts`` (the dtype its weights are saved
    and fitted in; ``None``: the model's own), checked by :func:`expert_entry`."""
    return None if isinstance(item, str) else item.get("storage")


def expert_label(item: str | Mapping[str, Any]) -> str | None:
    """The ``label`` of an entry of ``filter_bank.experts`` (what ``--explain`` calls the
    expert; ``None``: its registered name), checked by :func:`expert_entry`."""
    return None if isinstance(item, str) else item.get("label")


def _load_experts(entries: Sequence[str | Mapping[str, Any]]) -> list[nn.Module]:
    """The expert models (saved models, or registered models without weights), frozen and in
    eval mode, each wrapped in its self-ensemble if its entry names one, and with its
    black-and-white twin (:class:`~aioir.nn.grey_twin.GreyTwin`) if it names one."""
    from aioir.models import RestorerWrapper, load_model, untrained_name
    from aioir.models.filter_bank import label_expert, store_expert_as
    from aioir.nn.ensemble import GeometricEnsemble
    from aioir.nn.grey_twin import GreyTwin

    def load(path: str, mode: str | None) -> nn.Module:
        expert = load_model(path)
        if isinstance(expert, RestorerWrapper):
            raise ConfigError(f"filter_bank.experts: {path} is a wrapped model; give a network")
        if untrained_name(expert) is not None:
            raise ConfigError(
                f"filter_bank.experts: {path} has random weights; give a trained model's folder"
            )
        expert = expert.requires_grad_(False).eval()
        return expert if mode is None else GeometricEnsemble(expert, mode)

    experts: list[nn.Module] = []
    for i, item in enumerate(entries):
        path, mode = expert_entry(item, f"filter_bank.experts[{i}]")
        expert = load(path, mode)
        grey = expert_grey_model(item)
        if grey is not None:
            # building the twin draws no random numbers from the fit's stream: a fit with a
            # twin is the fit without it on colour images (its parts file still matches)
            with torch.random.fork_rng(devices=[]):
                twin = load(grey, mode)
            expert = GreyTwin(expert, twin)
        expert = store_expert_as(expert, expert_storage(item))  # rounded: what ships
        experts.append(label_expert(expert, expert_label(item)))
    return experts


def _expert_record(item: str | Mapping[str, Any], expert: nn.Module) -> dict[str, Any]:
    """What the fit's record says of an expert: its entry, label and training summary."""
    path, mode = expert_entry(item, "filter_bank.experts")
    record = {"model": path, "self_ensemble": mode, "label": expert_label(item),
              "training": _training_summary(expert)}  # fmt: skip
    grey = expert_grey_model(item)
    if grey is not None:
        record["grey_model"] = grey
    storage = expert_storage(item)
    if storage is not None:
        record["storage"] = storage
    return record


def _training_summary(model: nn.Module) -> dict[str, Any]:
    """What an expert's saved training record says of it (description, steps, val PSNR; a
    grey twin's, its colour twin's)."""
    from aioir.nn.ensemble import GeometricEnsemble
    from aioir.nn.grey_twin import GreyTwin

    if isinstance(model, GreyTwin):
        model = model.colour
    if isinstance(model, GeometricEnsemble):
        model = model.module
    training = dict(getattr(model, "aioir_metadata", {}).get("training") or {})
    keys = ("description", "steps", "best_val_psnr", "wall_time_s")
    return {k: training[k] for k in keys if k in training}


#: data options added after gate-example files were first written (left out of the stamp at
#: their defaults)
_LATER_DATA_FIELDS = ("pale", "dark", "defocus", "grey", "high_key", "low_key")
_DATA_DEFAULTS = dataclasses.asdict(DataConfig())


def _data_stamp(data: DataConfig) -> dict[str, Any]:
    """The data section as stored files are stamped with it (the fields added after the first
    files were written left out at their defaults, so those stamps stay valid)."""
    stamp = dataclasses.asdict(data)
    for name in _LATER_DATA_FIELDS:
        if stamp[name] == _DATA_DEFAULTS[name]:
            del stamp[name]
    return stamp


def _parts_key(config: FilterBankFitConfig, part: str) -> str:
    """What a fitted part (``filters`` or ``classifier``) depends on, as canonical JSON: the
    data, the seed and the part's own options (its stamp in ``filter_bank.parts_file``)."""
    fb = config.filter_bank
    if part == "filters":
        own: Any = {k: getattr(fb, k) for k in ("task", "severity_bins", "taps", "patches",
                                                 "patch_size")}  # fmt: skip
    else:  # the classifier or a held-out one (cross_fit says whether there are any)
        options = config.classifier_options()
        own = dataclasses.asdict(options) if options is not None else None
        if own is not None:
            del own["cross_fit"]
            for key in ("extra_crops", "highlight_powers", "shadow_powers", "shadow_bands"):
                if not own[key]:
                    del own[key]  # (none: the stamp of the classifiers fitted before any)
            if own["precision"] == "bf16-mixed":
                del own["precision"]  # (the default: as before the option existed)
    what = {"part": part, "data": _data_stamp(config.data), "seed": config.seed, "options": own}
    return json.dumps(what, sort_keys=True, default=str)


@contextlib.contextmanager
def _stored_file(path: Path, option: str) -> Iterator[Any]:
    """``path`` opened with safetensors for reading; anything unreadable in it, while open, is
    a one-line :class:`ConfigError` naming ``filter_bank.<option>``."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            yield f
    except (OSError, ValueError, KeyError, SafetensorError) as exc:
        raise ConfigError(f"filter_bank.{option}: {path}: unreadable ({exc})") from exc


def read_part(
    path: str | os.PathLike[str], part: str, key: str | None
) -> tuple[dict[str, Tensor], dict[str, Any]] | None:
    """The tensors of ``part`` stored in ``path`` (a ``filter_bank.parts_file``) under the
    stamp ``key`` (their names without the part's prefix) and the record stored with them;
    ``None`` when the file is missing or holds that part for another fit (``key=None``: for
    any fit, ``None`` only when it holds no such part)."""
    path = Path(path)
    if not path.is_file():
        return None
    with _stored_file(path, "parts_file") as f:
        meta = f.metadata() or {}
        stamp = meta.get(f"{part}_key")
        if stamp is None or (key is not None and stamp != key):
            log.info("%s: no %s of this fit; fitting them", path, part)
            return None
        prefix, names = f"{part}.", f.keys()
        tensors = {k[len(prefix) :]: f.get_tensor(k) for k in names if k.startswith(prefix)}
        return tensors, dict(json.loads(meta.get(f"{part}_record", "{}")))


def write_part(
    path: str | os.PathLike[str],
    part: str,
    key: str,
    tensors: Mapping[str, Tensor],
    record: Mapping[str, Any],
) -> None:
    """Store ``tensors`` and ``record`` as ``part`` of ``path`` under the stamp ``key``,
    keeping the file's other parts; written atomically."""
    from safetensors import safe_open
    from safetensors.torch import save

    from aioir.io import write_bytes_atomically

    path = Path(path)
    prefix = f"{part}."
    kept: dict[str, Tensor] = {}
    metadata: dict[str, str] = {}
    if path.is_file():  # read_part has read it: it is readable
        with safe_open(str(path), framework="pt") as f:
            metadata = {k: v for k, v in (f.metadata() or {}).items()
                        if not k.startswith(f"{part}_")}  # fmt: skip
            names = f.keys()
            kept = {k: f.get_tensor(k) for k in names if not k.startswith(prefix)}
    kept.update({prefix + k: v.detach().cpu().contiguous() for k, v in tensors.items()})
    metadata[f"{part}_key"] = key
    metadata[f"{part}_record"] = json.dumps(dict(record), sort_keys=True, default=str)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomically(path, save(kept, metadata=metadata), overwrite=True)


def stored_classifier(
    path: str | os.PathLike[str], part: str = "classifier"
) -> tuple[DegradationClassifier, dict[str, Any]]:
    """The degradation classifier stored as ``part`` of the parts file ``path`` by whichever fit
    wrote it (built from the options in its record, whatever the fit's stamp), in eval mode,
    and that record. ``ConfigError`` when the file holds no such classifier."""
    if not Path(path).is_file():
        raise ConfigError(f"{path}: no such parts file")
    stored = read_part(path, part, None)
    if stored is None or not {"options", "classes"} <= set(stored[1]):
        raise ConfigError(f"{path}: holds no {part} with its options (a fit's 'classifier')")
    tensors, record = stored
    options = ClassifierOptions(**record["options"])
    return _loaded_classifier(record["classes"], options, tensors), record


def _loaded_classifier(
    classes: Sequence[str], options: ClassifierOptions, state: Mapping[str, Tensor]
) -> DegradationClassifier:
    """The classifier ``options`` describe for ``classes`` with the weights ``state``, in eval
    mode and frozen (its initial weights drawn aside: the global generator is left as it was)."""
    with torch.random.fork_rng(devices=[]):  # its initial weights draw; they are replaced
        classifier = untrained_classifier(list(classes), options)
    classifier.load_state_dict(state)
    return classifier.eval().requires_grad_(False)


def _examples_key(config: FilterBankFitConfig) -> str:
    """What the gate examples' network terms and network/input/filter scores depend on, as
    canonical JSON (the examples file's stamp; the experts are its columns, not its stamp, and
    the descriptor's input terms are not stored)."""
    options = {
        k: v for k, v in dataclasses.asdict(config.filter_bank).items()
        if k not in GATE_ONLY_OPTIONS
        and k not in (
            "hidden", "experts", "input_statistics", "classifier", "gate_descriptor",
            "routed_gate", "gate_statistics", "parts_file",
        )
    }  # fmt: skip
    what = {
        "model": dataclasses.asdict(config.model), "data": _data_stamp(config.data),
        "seed": config.seed, "filter_bank": options, "device": config.runtime.device,
        "channels_last": config.runtime.channels_last,
    }  # fmt: skip
    return json.dumps(what, sort_keys=True, default=str)


def candidate_ids(
    filters: int,
    experts: Sequence[str | Mapping[str, Any]],
    weights: Sequence[str] | None = None,
) -> list[str]:
    """What each score column of the gate examples is: ``output``, ``input``, ``filter k``,
    then each expert's entry as canonical JSON: its path, self-ensemble mode and, given
    ``weights`` (one :func:`~aioir.nn.filter_bank.weights_fingerprint` per expert, e.g.
    :meth:`FilterBankHead.expert_fingerprints`), its weights — so new weights at an old path
    are a new column, never the old expert's scores. (Files written before the fingerprints
    have ids without them: their expert columns are scored again.)"""
    if weights is not None and len(weights) != len(experts):
        raise ValueError(f"{len(weights)} fingerprints for {len(experts)} experts")
    ids = ["output", "input", *(f"filter {k}" for k in range(1, filters + 1))]
    for j, item in enumerate(experts):
        model, mode = expert_entry(item, "filter_bank.experts")
        entry: dict[str, Any] = {"model": model, "self_ensemble": mode}
        grey = expert_grey_model(item)
        if grey is not None:  # (absent otherwise: older ids stay as they were)
            entry["grey_model"] = grey
        if weights is not None:
            entry["weights"] = weights[j]
        ids.append(json.dumps(entry, sort_keys=True))
    return ids


@dataclasses.dataclass
class GateExamples:
    """Stored gate examples: the descriptors' network terms (N×D,
    :meth:`FilterBankHead.network_terms`), one score column (N, uncapped) per candidate id
    (:func:`candidate_ids`), the random generator's state after them and, once a fit whose
    head reads input terms has computed them, the crops' input terms (N×S,
    :meth:`FilterBankHead.input_terms`) and what they are
    (:meth:`FilterBankHead.input_terms_id`: ``input_statistics``, or a classifier's
    fingerprint), and the Gram matrices of the candidates' errors (N×G×G,
    :func:`error_gram`) of the candidates ``gram_ids`` (those of the fit that restored the
    crops; a column scored later from the crops alone has none)."""

    descriptors: Tensor
    columns: dict[str, Tensor]
    rng_state: Tensor
    input_terms: Tensor | None = None
    input_terms_id: str = ""
    gram: Tensor | None = None
    gram_ids: list[str] = dataclasses.field(default_factory=list)

    def terms_for(self, head: FilterBankHead) -> Tensor | None:
        """The stored input terms if they are ``head``'s (``None`` otherwise)."""
        if self.input_terms is None or self.input_terms_id != head.input_terms_id():
            return None
        return self.input_terms

    def gram_for(self, ids: Sequence[str]) -> Tensor | None:
        """The Gram matrices of the candidates ``ids``, in that order (N×len×len), or ``None``
        when the stored ones lack any of them."""
        if self.gram is None or not set(ids) <= set(self.gram_ids):
            return None
        rows = torch.tensor([self.gram_ids.index(i) for i in ids])
        return self.gram[:, rows][:, :, rows]


def read_gate_examples(path: str | os.PathLike[str], key: str | None = None) -> GateExamples | None:
    """The examples stored at ``path`` (a ``filter_bank.gate_examples_file``) when they were
    made with ``key`` (any when ``None``); ``None`` otherwise. Files written before the columns
    were named (their stamp held the experts) are read too."""
    path = Path(path)
    if not path.is_file():
        return None
    with _stored_file(path, "gate_examples_file") as f:
        meta = f.metadata() or {}
        stored_key = meta.get("key", "")
        scores = f.get_tensor("scores")
        if "candidates" in meta:
            ids = json.loads(meta["candidates"])
        else:  # the first format: experts inside the stamp, columns in order
            stamp = json.loads(stored_key or "{}")
            experts = stamp.get("filter_bank", {}).pop("experts", [])
            stored_key = json.dumps(stamp, sort_keys=True, default=str)
            ids = candidate_ids(scores.shape[1] - 2 - len(experts), experts)
        if key is not None and stored_key != key:
            log.info("%s: gate examples of another fit; computing them again", path)
            return None
        columns = dict(zip(ids, scores.unbind(dim=1), strict=True))
        names = set(f.keys())
        terms, terms_id = None, ""
        if "input_terms" in names:
            terms, terms_id = f.get_tensor("input_terms"), meta.get("input_terms_id", "")
        elif "input_statistics" in names:  # files written before other input terms
            terms, terms_id = f.get_tensor("input_statistics"), "input_statistics"
        gram, gram_ids = None, []
        if "gram" in names:  # (files written before run 61 have none)
            gram, gram_ids = f.get_tensor("gram"), json.loads(meta["gram_candidates"])
        return GateExamples(
            f.get_tensor("descriptors"), columns, f.get_tensor("rng_state"), terms, terms_id,
            gram, gram_ids,
        )  # fmt: skip


def merge_examples(parts: Sequence[GateExamples]) -> GateExamples:
    """Gate examples of several files as one set, in order (the columns all share; the input
    terms when all have the same; the Gram matrices of the candidates all have; the first
    file's generator state, as a fit has it)."""
    if len(parts) == 1:
        return parts[0]
    shared = [k for k in parts[0].columns if all(k in p.columns for p in parts)]
    terms = [p.input_terms for p in parts if p.input_terms is not None]
    same = len(terms) == len(parts) and len({p.input_terms_id for p in parts}) == 1
    gram_ids = [k for k in parts[0].gram_ids if all(k in p.gram_ids for p in parts)]
    grams = [p.gram_for(gram_ids) for p in parts] if gram_ids else []
    return GateExamples(
        torch.cat([p.descriptors for p in parts]),
        {k: torch.cat([p.columns[k] for p in parts]) for k in shared},
        parts[0].rng_state,
        torch.cat(terms) if same else None,
        parts[0].input_terms_id if same else "",
        torch.cat([g for g in grams if g is not None]) if gram_ids else None,
        gram_ids,
    )


@dataclasses.dataclass
class SavedGateExamples:
    """A fitted model's gate examples read back from its files: the merged ``examples``, the
    ``scores`` (N×C, uncapped, in the head's candidate order), each example's ``task``, how
    many of them are ``extra`` (``extra_gate_data``'s, last), how many each file gave and the
    Gram matrices of the candidates' errors (N×C×C, in that order; ``None`` when a file lacks
    them)."""

    examples: GateExamples
    scores: Tensor
    tasks: list[str]
    extra: int
    per_file: list[int]
    gram: Tensor | None = None


def saved_gate_examples(
    model: nn.Module, paths: Sequence[str | os.PathLike[str]]
) -> SavedGateExamples:
    """The gate examples of the fitted filter-bank ``model`` from its examples files (its
    ``gate_examples_file`` first, then its ``extra_gate_data`` files as the fit lists them, or
    the first few of them). Raises ``ValueError`` naming the file when one lacks a candidate's
    scores or the counts do not match the fit's."""
    record = model.aioir_metadata["filter_bank"]
    options = FilterBankOptions(**record["filter_bank"])
    head = model.filter_bank
    ids = candidate_ids(head.num_filters, options.experts, head.expert_fingerprints())
    parts = []
    for path in paths:
        part = read_gate_examples(path)
        absent = [i for i in ids if part is None or i not in part.columns]
        if part is None or absent:
            raise ValueError(
                f"{path}: no scores for {absent or 'any candidate'} (a fit of this model's "
                "config with this file as its gate_examples_file adds them from the crops)"
            )
        parts.append(part)
    examples = merge_examples(parts)
    given = dataclasses.replace(options, extra_gate_data=options.extra_gate_data[: len(parts) - 1])
    tasks = gate_example_tasks(record["data"]["tasks"], given)  # (the files given: main first)
    if len(tasks) != len(examples.descriptors):
        raise ValueError(
            f"{len(examples.descriptors)} examples, but the fit's tasks and counts give "
            f"{len(tasks)}"
        )
    scores = torch.stack([examples.columns[i] for i in ids], dim=1)
    per_file = [len(p.descriptors) for p in parts]
    extra = len(scores) - per_file[0]
    return SavedGateExamples(examples, scores, tasks, extra, per_file, examples.gram_for(ids))


def _write_examples(path: Path, key: str, ids: Sequence[str], examples: GateExamples) -> None:
    from safetensors.torch import save

    from aioir.io import write_bytes_atomically

    tensors = {
        "descriptors": examples.descriptors,
        "scores": torch.stack([examples.columns[i] for i in ids], dim=1),
        "rng_state": examples.rng_state,
    }
    metadata = {"key": key, "candidates": json.dumps(list(ids))}
    if examples.input_terms is not None:
        tensors["input_terms"] = examples.input_terms
        metadata["input_terms_id"] = examples.input_terms_id
    if examples.gram is not None:
        tensors["gram"] = examples.gram
        metadata["gram_candidates"] = json.dumps(examples.gram_ids)
    payload = save({k: v.contiguous() for k, v in tensors.items()}, metadata=metadata)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomically(path, payload, overwrite=True)


def _gate_examples(
    model: FilterBankRestorer,
    loader: Any,
    experts: Sequence[str | Mapping[str, Any]],
    file: str | None,
    key: str,
    progress: bool,
    input_terms: Tensor | None = None,
    need_gram: bool = False,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """The gate examples of ``loader``'s crops (descriptors, uncapped scores in candidate
    order, the Gram matrices of the candidates' errors or ``None``): read from ``file`` where
    it has them for ``key`` (scoring the experts it lacks a column for, and the head's input
    terms if the file lacks them, from the crops alone), else computed; the file is (re)written
    when anything was computed. ``need_gram``: a file without the Gram matrices of every
    candidate does not serve, the crops are restored again. ``input_terms`` (N×S) take the
    place of the head's own in the descriptors (the file keeps the head's). Leaves the random
    generator as restoring every crop would."""
    head = model.filter_bank
    ids = candidate_ids(head.num_filters, experts, head.expert_fingerprints())
    path = Path(file) if file else None
    stored = read_gate_examples(path, key) if path is not None else None
    if stored is not None and need_gram and stored.gram_for(ids) is None:
        log.info("%s: no Gram matrices of these candidates; restoring the crops again", path)
        stored = None
    if stored is None:
        network, terms, scores, gram = gate_examples(model, head, loader, float("inf"), progress)
        columns = dict(zip(ids, scores.unbind(dim=1), strict=True))
        stored = GateExamples(network, columns, torch.get_rng_state(), terms,
                              head.input_terms_id(), gram, list(ids))  # fmt: skip
        changed = True
    else:
        missing = [j for j, i in enumerate(ids) if i not in stored.columns]
        need_terms = head.input_terms_size > 0 and stored.terms_for(head) is None
        changed = bool(missing) or need_terms
        if changed:
            log.info("gate examples: %d new candidate(s)%s from the crops", len(missing),
                     " and the input terms" if need_terms else "")  # fmt: skip
            terms, new = input_only_examples(model, head, loader, missing, progress)
            stored.columns.update(zip((ids[j] for j in missing), new.unbind(dim=1), strict=True))
            if need_terms:
                stored.input_terms, stored.input_terms_id = terms, head.input_terms_id()
        # the generator as restoring the crops left it (the gate's reset draws from it next)
        torch.set_rng_state(stored.rng_state)
    if path is not None and changed:
        _write_examples(path, key, ids, stored)
    terms = input_terms if input_terms is not None else stored.terms_for(head)
    descriptors = head.assemble(stored.descriptors, terms)
    return descriptors, torch.stack([stored.columns[i] for i in ids], dim=1), stored.gram_for(ids)


def _all_gate_examples(
    model: FilterBankRestorer,
    dm: Any,
    config: FilterBankFitConfig,
    progress: bool,
    held_out: HeldOutClassifiers | None = None,
) -> tuple[Tensor, Tensor, Tensor | None, int]:
    """The fit's gate examples (descriptors, uncapped scores, the Gram matrices when every
    file has them, how many are extra): the main crops', then each ``extra_gate_data`` entry's (each
    in its own examples file, stamped with the main key and the entry's resolved data, count
    and salt); with ``held_out``, their input terms are the held-out classifiers'
    (:func:`held_out_terms`; the files keep the head's own). The random generator is left as
    the main examples leave it, so extra data never changes the gate's initial draw."""
    from aioir.engine.datamodule import RestorationDataModule

    fb = config.filter_bank
    key = _examples_key(config)
    # (datamodule, crops per task, salt, examples file, stamp) per source, the main one first
    sources = [(dm, fb.gate_items_per_task, 4, fb.gate_examples_file, key)]
    for i, entry in enumerate(fb.extra_gate_data):
        data, items, salt = config.extra_data(i)
        stamp = {"data": entry.get("data") or {}, "items_per_task": items, "salt": salt}
        extra_key = json.dumps({"main": key, "extra": stamp}, sort_keys=True, default=str)
        extra_dm = RestorationDataModule(data, data.resolved_root(), seed=config.seed)
        sources.append((extra_dm, items, salt, entry.get("examples_file"), extra_key))
    parts, states = [], []
    for source, items, salt, file, stamp_key in sources:
        specs = {task: source.task_spec(task) for task in source.task_names}
        crops = source.synthetic_pairs(specs, items, fb.gate_patch_size, salt=salt)
        loader = DataLoader(crops, batch_size=16, shuffle=False)
        terms = None
        if held_out is not None:  # (leaves the random generator as it found it)
            photos = [crops.photo_name(i) for i in range(len(crops))]
            terms = held_out_terms(model, loader, photos, held_out, progress)
        parts.append(_gate_examples(model, loader, fb.experts, file, stamp_key, progress, terms,
                                    fb.needs_gram))  # fmt: skip
        states.append(torch.get_rng_state())
    torch.set_rng_state(states[0])  # as the main examples left it
    extra = sum(len(s) for _, s, _ in parts[1:])
    grams = [g for _, _, g in parts]
    gram = torch.cat(grams) if all(g is not None for g in grams) else None
    return torch.cat([d for d, _, _ in parts]), torch.cat([s for _, s, _ in parts]), gram, extra


def _install_filters(
    head: FilterBankHead,
    dm: Any,
    groups: dict[str, TaskSpec],
    config: FilterBankFitConfig,
    progress: bool,
) -> None:
    """Install ``head``'s filters: read from ``filter_bank.parts_file`` where it holds this
    fit's and the fit reaches them in the random state they were fitted in (the generator is
    then left as fitting left it), else fitted (:func:`fit_filters`) and written there."""
    fb = config.filter_bank
    key = _parts_key(config, "filters")
    before = torch.get_rng_state()
    stored = read_part(fb.parts_file, "filters", key) if fb.parts_file else None
    if stored is not None:
        parts = stored[0]
        if parts["weights"].shape == head.filters.shape and torch.equal(
            parts["rng_before"], before
        ):
            head.set_filters(parts["weights"].to(head.filters.device))
            torch.set_rng_state(parts["rng_after"])
            log.info("filters: read from %s", fb.parts_file)
            return
        log.info("%s: filters fitted for another head or random state; fitting them", fb.parts_file)
    fit_filters(head, dm, groups, fb, progress)
    if fb.parts_file:
        tensors = {
            "weights": head.filters,
            "rng_before": before,
            "rng_after": torch.get_rng_state(),
        }
        write_part(fb.parts_file, "filters", key, tensors,
                   {"filters": head.num_filters, "patches": fb.patches})  # fmt: skip


@dataclasses.dataclass
class HeldOutClassifiers:
    """``classifier.cross_fit``'s two classifiers: ``classifiers[k]`` was trained on the
    crops of every training photo outside fold ``k`` (``folds``: photo name → 0 or 1,
    :func:`~aioir.engine.degradation_classifier.photo_folds`), so its verdicts on fold ``k``'s
    photos are those of a classifier that never saw them."""

    classifiers: tuple[DegradationClassifier, DegradationClassifier]
    folds: dict[str, int]

    def fold_of(self, photo: str) -> int:
        """The fold of ``photo``; ``ValueError`` for a photo neither classifier was split on."""
        if photo not in self.folds:
            raise ValueError(f"photo {photo!r} is in neither fold of the held-out classifiers")
        return self.folds[photo]


def _fit_classifier(
    dm: Any, config: FilterBankFitConfig, progress: bool
) -> tuple[DegradationClassifier | None, dict[str, Any], HeldOutClassifiers | None]:
    """The degradation classifier ``filter_bank.classifier`` asks for (``None`` and an empty
    record when it asks for none) and its record, read from ``filter_bank.parts_file`` where it
    holds this fit's, else trained and written there (:class:`_ClassifierParts`). With
    ``cross_fit``, also the two held-out classifiers (their records in the record's
    ``held_out``); ``None`` without."""
    options = config.classifier_options()
    if options is None:
        return None, {}, None
    parts = _ClassifierParts(dm, config, options, progress)
    classifier, record = parts.head_classifier()
    if not options.cross_fit:
        return classifier, record, None
    held_out, held_out_records = parts.held_out_classifiers()
    return classifier, {**record, "held_out": held_out_records}, held_out


class _ClassifierParts:
    """The fit's degradation classifiers: the head's and ``cross_fit``'s held-out pair.

    Each is read from ``filter_bank.parts_file`` where that holds this fit's (its stamp:
    :func:`_parts_key`), else trained and written there. They train on crops of the training
    photos, plain, pale, dark and ``extra_crops`` as the options ask, drawn once, in a
    generator of their own (seeded from the fit's seed and the classifier's salt; the rest of
    the fit draws as it would without them); the head's classifier trains in that generator
    right after its crops, each held-out one in its own (salt + 1 + fold), on the crops of the
    photos outside its fold."""

    def __init__(
        self, dm: Any, config: FilterBankFitConfig, options: ClassifierOptions, progress: bool
    ) -> None:
        self.dm, self.config, self.options, self.progress = dm, config, options, progress
        self.parts_file = config.filter_bank.parts_file
        self._crops: tuple[Tensor, Tensor, list[str], list[str]] | None = None

    def _stored(self, part: str) -> tuple[dict[str, Tensor], dict[str, Any]] | None:
        if not self.parts_file:
            return None
        return read_part(self.parts_file, part, _parts_key(self.config, part))

    def _keep(self, part: str, model: DegradationClassifier, record: dict[str, Any]) -> None:
        if self.parts_file:
            key = _parts_key(self.config, part)
            write_part(self.parts_file, part, key, model.state_dict(), record)

    def _draw_crops(self) -> tuple[Tensor, Tensor, list[str], list[str]]:
        """The training crops (inputs, labels, classes, photos), from the global generator."""
        from aioir.engine.datamodule import RestorationDataModule
        from aioir.engine.degradation_classifier import classifier_crops

        options, config = self.options, self.config
        sources = [(self.dm, options.items_per_task)]
        variants = [({"pale": 1.0}, options.pale_items_per_task),
                    ({"dark": 1.0}, options.dark_items_per_task),
                    *((entry["data"], entry["items_per_task"]) for entry in options.extra_crops)]  # fmt: skip
        for overrides, items in variants:
            if items > 0:  # the same photos rendered so, every crop of its own look
                data = dataclasses.replace(config.data, **overrides)
                sources.append((RestorationDataModule(data, data.resolved_root(), seed=config.seed),
                                items))  # fmt: skip
        self._crops = classifier_crops(sources, options.patch_size, options.salt, self.progress,
                                       options.clean_above)  # fmt: skip
        return self._crops

    def _training_crops(self) -> tuple[Tensor, Tensor, list[str], list[str]]:
        """The training crops, drawn (in their own generator) if the head's classifier did not
        draw them."""
        if self._crops is None:
            with torch.random.fork_rng(devices=[]):  # the crops as the classifier's were made
                torch.manual_seed(self.config.seed + self.options.salt)
                self._draw_crops()
        assert self._crops is not None
        return self._crops

    def head_classifier(self) -> tuple[DegradationClassifier, dict[str, Any]]:
        """The head's classifier and its record (its accuracy on the data's validation crops)."""
        from aioir.engine.degradation_classifier import classifier_accuracy, train_classifier

        stored = self._stored("classifier")
        if stored is not None:
            classifier = _loaded_classifier(self.dm.task_names, self.options, stored[0])
            log.info("degradation classifier: read from %s", self.parts_file)  # same data
            return classifier, {**stored[1], "read_from": self.parts_file}
        start = time.perf_counter()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.config.seed + self.options.salt)
            inputs, labels, classes, _ = self._draw_crops()
            classifier = train_classifier(inputs, labels, classes, self.options, self.progress)
        val_inputs, val_labels = [], []
        for batch in self.dm.val_dataloader():
            val_inputs.append(batch["input"])
            val_labels.append(batch["task_id"])
        accuracy = classifier_accuracy(classifier, torch.cat(val_inputs), torch.cat(val_labels))
        log.info("degradation classifier: %.1f%% of the validation crops named right",
                 100 * accuracy)  # fmt: skip
        record = {
            "options": dataclasses.asdict(self.options), "classes": classes, "crops": len(labels),
            "crops_per_class": torch.bincount(labels, minlength=len(classes)).tolist(),
            "val_accuracy": round(accuracy, 4),
            "wall_time_s": round(time.perf_counter() - start, 2),
        }  # fmt: skip
        self._keep("classifier", classifier, record)
        return classifier.eval().requires_grad_(False), record

    def held_out_classifiers(self) -> tuple[HeldOutClassifiers, list[dict[str, Any]]]:
        """``cross_fit``'s two classifiers and their records (each one's accuracy on the crops
        of the fold it did not see)."""
        from aioir.engine.degradation_classifier import (
            classifier_accuracy,
            photo_folds,
            train_classifier,
        )

        folds = photo_folds(self.dm.train_photo_names())
        if len(set(folds.values())) < 2:
            raise ConfigError(
                "filter_bank.classifier.cross_fit: needs at least two training photos"
            )
        models: list[DegradationClassifier] = []
        records: list[dict[str, Any]] = []
        for k in range(2):
            part = f"held_out_classifier_{k}"
            stored = self._stored(part)
            if stored is not None:
                log.info("held-out classifier %d: read from %s", k, self.parts_file)
                models.append(_loaded_classifier(self.dm.task_names, self.options, stored[0]))
                records.append(stored[1])
                continue
            inputs, labels, classes, photos = self._training_crops()
            fold = torch.tensor([folds.get(p, -1) for p in photos])
            if bool((fold < 0).any()):
                raise ConfigError("filter_bank.classifier.cross_fit: a crop of a photo outside "
                                  "the training photos")  # fmt: skip
            seen, unseen = fold != k, fold == k
            start = time.perf_counter()
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.config.seed + self.options.salt + 1 + k)
                model = train_classifier(inputs[seen], labels[seen], classes, self.options,
                                         self.progress)  # fmt: skip
            accuracy = classifier_accuracy(model, inputs[unseen], labels[unseen])
            log.info("held-out classifier %d: %.1f%% of the other photos' crops named right",
                     k, 100 * accuracy)  # fmt: skip
            record = {
                "fold": k, "photos_held_out": sum(1 for f in folds.values() if f == k),
                "crops": int(seen.sum()), "held_out_accuracy": round(accuracy, 4),
                "wall_time_s": round(time.perf_counter() - start, 2),
            }  # fmt: skip
            self._keep(part, model, record)
            models.append(model.eval().requires_grad_(False))
            records.append(record)
        return HeldOutClassifiers((models[0], models[1]), folds), records


@torch.no_grad()
def held_out_terms(
    model: FilterBankRestorer,
    loader: Any,
    photos: Sequence[str],
    held_out: HeldOutClassifiers,
    progress: bool = True,
) -> Tensor:
    """The input terms (N×C, :meth:`FilterBankHead.input_terms`) of ``loader``'s crops as the
    held-out classifier of each crop's photo (``photos``, one per crop) gives them: what the
    head's own classifier would say of photos it never saw. Leaves the head's classifier and
    the random generator as they were."""
    head = model.filter_bank
    folds = torch.tensor([held_out.fold_of(p) for p in photos])
    own = head.classifier
    classifiers = [c.to(head.filters.device) for c in held_out.classifiers]
    per_fold: list[list[Tensor]] = [[] for _ in classifiers]
    try:
        with torch.random.fork_rng(devices=[]):  # (the loader's iterator draws a seed)
            for _, padded in _crops(model, loader, "held-out verdicts", progress):
                for terms, classifier in zip(per_fold, classifiers, strict=True):
                    head.classifier = classifier
                    terms.append(head.input_terms(padded).float())
    finally:
        head.classifier = own
    first, second = (torch.cat(terms) for terms in per_fold)
    if len(folds) != len(first):
        raise ValueError(f"{len(photos)} photos for {len(first)} crops")
    return torch.where((folds == 0)[:, None], first, second)


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
    classifier, classifier_record, held_out = _fit_classifier(dm, config, progress)
    model = wrap_in_filter_bank(
        network, len(groups), fb.taps, fb.hidden, config.seed, experts, fb.input_statistics,
        classifier, fb.gate_descriptor, fb.routed_gate, fb.told_gate, fb.gate_seed,
        fb.gate_statistics,
    )  # fmt: skip
    if rt.channels_last:
        to_channels_last(model)
    model.to(device)
    head = model.filter_bank

    _install_filters(head, dm, groups, config, progress)
    descriptors, scores, gram, extra = _all_gate_examples(model, dm, config, progress, held_out)
    tasks = gate_example_tasks(dm.task_names, fb)
    # the told gate starts where the blind one did: a saved head's (gate_start) or this one's
    if fb.gate_start is not None:
        initial_gate = start_gates_from(head, _saved_head(fb.gate_start))
    else:
        initial_gate = copy.deepcopy(head.gate)
    expected = train_gate(head, descriptors, scores, fb, progress, extra, tasks, gram)
    told_expected = (
        fit_told_gate(head, initial_gate, descriptors, scores, fb, tasks, progress, extra, gram)
        if fb.told_gate
        else None
    )
    val = _validate(model, dm, config, device) if config.validation.enabled else None

    record: dict[str, Any] = {
        "description": config.description,
        "model": dataclasses.asdict(config.model),
        "data": dm.describe(),
        "seed": config.seed,
        "filter_bank": dataclasses.asdict(fb),
        "filters": head.num_filters,
        "experts": [_expert_record(item, e) for item, e in zip(fb.experts, experts, strict=True)],
        **({"classifier_training": classifier_record} if classifier_record else {}),
        "gate_examples": len(scores),
        "gate_expected_psnr": expected,  # (choice_score's: named before gate_mixture_weight)
        **({"told_gate_expected_psnr": told_expected} if told_expected is not None else {}),
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
