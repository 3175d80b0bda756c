"""Pseudo-pair test-time objective for UDAIR's distribution adapters (ours; experimental).

CORAL test-time adaptation (:mod:`aioir.methods.udair.tta`) only moves the injected
degradation embeddings towards a source cluster; on aioir's shifted-target benchmark it is
neutral with every model measured (``benchmarks/RESULTS.md`` §6). This objective asks the
adapters to *restore* instead, with pairs made from the image itself (issue 18, part 3):

1. restore ``ŷ₀ = f(x)`` with the current weights (the network being adapted, at the working
   resolution; a wrapper such as the default model's filter-bank head is not part of ``f``);
2. identify the degradation: the given task, else the blind chooser of CORAL TTA
   (:func:`~aioir.methods.udair.tta.choose_reference`) on the unadapted embedding;
3. synthesise pseudo-inputs ``x'ᵢ = Dᵢ(ŷ₀)`` on ``pairs`` seeded random crops with the task's
   registered degradations (:mod:`aioir.degradations`, those training draws from). Severity:
   ``"match"`` (the default) picks, among the task's degradations and the severities
   :data:`SEVERITY_GRID`, the one whose re-degraded crops have the unadapted DAM embedding
   nearest to the input's own crops (:func:`embedding_distance`), so the pairs imitate the
   input's degradation; a float fixes the severity and draws the degradation type per pair,
   as training does;
4. only the three distribution adapters (the parameters CORAL TTA updates; re-initialised
   residual with a zero last layer, so step 0 is the trained model) are trained for a few AdamW
   steps on ``L1(f(x'), ŷ₀)`` — the decoder is frozen but passes the gradient to the adapters —
   optionally ``+ coral_weight ·`` the CORAL objective on the input's own maps; the stopping rule
   and "keep the lowest-loss adapters" of the default mode apply (the pairs are fixed, so the
   losses are comparable);
5. the caller restores ``x`` with the adapted weights; everything is reset afterwards
   (episodic, :func:`~aioir.methods.udair.tta.preserved_state`).

:func:`adapt_folder_pseudo_pairs` runs the same objective once over a folder (``aioir adapt
--method pseudo-pair``): random crops, targets from a frozen copy of the starting model, a
fresh degradation draw per crop at the image's matched (or the fixed) severity.

Whether it stays is decided by the shifted-target benchmark (``benchmarks/tta.py``, rows
``pseudo-pair``); until then it is off by default and documented as experimental
(``docs/methods/udair.md``, "Pseudo-pair test-time objective").
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aioir.data.transforms import random_crop_box
from aioir.degradations import (
    Compose,
    Degradation,
    available_degradations,
    canonical_order,
    degradation_class,
)
from aioir.errors import ConfigError
from aioir.methods.udair.adapt import FolderAdaptSettings
from aioir.methods.udair.bank import LEVELS, SourceBank
from aioir.methods.udair.model import UDAIRBase
from aioir.nn.padding import pad_to_multiple, unpad
from aioir.tasks import canonical_task

if TYPE_CHECKING:
    from aioir.methods.udair.tta import TTAConfig

__all__ = [
    "SEVERITY_GRID",
    "PseudoPairAdaptConfig",
    "PseudoPairAdaptResult",
    "PseudoPairs",
    "adapt_folder_pseudo_pairs",
    "adapted_restoration",
    "check_severity",
    "draw_degradation",
    "embedding_distance",
    "make_pseudo_pairs",
    "pair_seed",
    "pseudo_pair_tta",
    "task_recipes",
]

#: Severities tried by ``severity="match"`` (the degradations' ``sample`` scale, [0, 1]).
SEVERITY_GRID: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
#: Default crop side of the pseudo-pairs at test time (cost: the decoder's backward).
DEFAULT_CROP = 128
#: Default number of pseudo-pairs (crops, each with its own degradation draw) per image.
DEFAULT_PAIRS = 2
#: Default number of updates per image.
DEFAULT_STEPS = 5


def check_severity(severity: float | str, where: str = "pseudo-pair") -> None:
    """ConfigError unless ``severity`` is ``"match"`` or a number in [0, 1]."""
    if isinstance(severity, str):
        if severity != "match":
            raise ConfigError(f"{where}: severity must be 'match' or a number in [0, 1]")
        return
    if isinstance(severity, bool) or not isinstance(severity, (int, float)):
        raise ConfigError(f"{where}: severity must be 'match' or a number in [0, 1]")
    if not 0.0 <= float(severity) <= 1.0:
        raise ConfigError(f"{where}: severity must be in [0, 1], not {severity}")


# ------------------------------------------------------------------------------ degradations
def task_recipes(task: str) -> list[tuple[str, ...]]:
    """The degradation recipes of a bank task: one registered degradation name per component
    (a plain task has one component; ``haze+rain`` two), every combination.

    ConfigError when a component has no registered degradation (a custom task name)."""
    from aioir.data.synthetic import composite_parts

    parts = composite_parts(task) or (canonical_task(task),)
    choices = []
    for part in parts:
        names = available_degradations(canonical_task(part))
        if not names:
            raise ConfigError(
                f"pseudo-pair: no registered degradation for task {part!r}; give --tta-task / "
                "task= with a known task"
            )
        choices.append(names)
    return [tuple(c) for c in itertools.product(*choices)]


def draw_degradation(recipe: Sequence[str], severity: float, gen: torch.Generator) -> Degradation:
    """The degradation of ``recipe`` (registered names) at ``severity``, parameters drawn from
    ``gen``; several components are applied in physical order."""
    drawn = [degradation_class(name).sample(float(severity), gen) for name in recipe]
    return drawn[0] if len(drawn) == 1 else Compose(canonical_order(drawn))


def _degrade(image: Tensor, recipe: Sequence[str], severity: float, seed: int) -> Tensor:
    """``recipe`` at ``severity`` applied to a 1×3×H×W ``image``; parameters and noise from a
    generator seeded with ``seed`` (the same seed for every candidate: common random numbers)."""
    gen = torch.Generator().manual_seed(seed)
    degradation = draw_degradation(recipe, severity, gen)
    return degradation.apply(image, gen).clamp(0.0, 1.0)


# ------------------------------------------------------------------------------ embeddings
def _level_spread(bank: SourceBank) -> dict[str, float]:
    """Mean distance between the bank's task mean embeddings per level (a unit per level)."""
    out = {}
    for level in LEVELS:
        means = bank.levels[level].double().mean(dim=(2, 3))
        n = means.shape[0]
        total = torch.cdist(means, means).sum() / max(1, n * (n - 1))
        out[level] = max(float(total), 1e-12)
    return out


def embedding_distance(
    a: Mapping[str, Tensor], b: Mapping[str, Tensor], spread: Mapping[str, float]
) -> Tensor:
    """``Σ_ℓ ‖mean(g_ℓ(a)) − mean(g_ℓ(b))‖ / s_ℓ`` per batch row (B values; spatial means,
    ``s_ℓ`` the bank's spread of task means, :func:`_level_spread`) — the nearest-centroid
    distance of the blind chooser, between two images instead of an image and a task."""
    total = None
    for level in LEVELS:
        ma = a[level].double().mean(dim=(2, 3))
        mb = b[level].double().mean(dim=(2, 3))
        term = (ma - mb).norm(dim=1) / spread[level]
        total = term if total is None else total + term
    assert total is not None
    return total


def _raw(model: UDAIRBase, x: Tensor) -> dict[str, Tensor]:
    """Unadapted ``g4, g3, g2`` of a padded batch (no grad)."""
    from aioir.methods.udair.tta import raw_maps

    return raw_maps(model, x)


# ------------------------------------------------------------------------------ pairs
@dataclasses.dataclass
class PseudoPairs:
    """Fixed pseudo-pairs of one image: ``inputs`` ``x'`` (padded to the model's multiple),
    ``targets`` ``ŷ₀`` (unpadded crops), the unadapted maps of ``inputs`` and how they were made."""

    inputs: Tensor
    targets: Tensor
    raw: dict[str, Tensor]
    size: tuple[int, int]
    recipe: list[tuple[str, ...]]
    severity: list[float]
    distances: dict[str, list[float]] | None = None


def pair_seed(seed: int, index: int) -> int:
    """The degradation seed of pseudo-pair ``index`` (the same for every candidate)."""
    return seed + 7919 * (index + 1)


def _crop_boxes(h: int, w: int, side: int, count: int, seed: int) -> list[tuple[int, int, int]]:
    side = min(side, h, w)
    gen = torch.Generator().manual_seed(seed)
    return [(*random_crop_box(h, w, side, gen), side) for _ in range(count)]


def make_pseudo_pairs(
    model: UDAIRBase,
    work: Tensor,
    restored: Tensor,
    task: str,
    bank: SourceBank,
    *,
    severity: float | str = "match",
    pairs: int = DEFAULT_PAIRS,
    crop: int = DEFAULT_CROP,
    seed: int = 42,
) -> PseudoPairs:
    """Pseudo-pairs ``(Dᵢ(ŷ₀)ᵢ, ŷ₀ᵢ)`` on ``pairs`` seeded crops of the 1×3×H×W ``work``
    image and its restoration ``restored`` (module docstring, step 3)."""
    check_severity(severity)
    recipes = task_recipes(task)
    boxes = _crop_boxes(work.shape[-2], work.shape[-1], crop, pairs, seed)
    xs = [work[..., t : t + s, left : left + s] for t, left, s in boxes]
    ys = [restored[..., t : t + s, left : left + s] for t, left, s in boxes]
    seeds = [pair_seed(seed, i) for i in range(pairs)]
    multiple = int(getattr(model, "size_multiple", 8))
    distances = None
    if severity == "match":
        spread = _level_spread(bank)
        candidates = [(r, s) for r in recipes for s in SEVERITY_GRID]
        reference = _raw(model, pad_to_multiple(torch.cat(xs), multiple)[0])
        scores = []
        for recipe, sev in candidates:
            degraded = torch.cat([_degrade(y, recipe, sev, sd) for y, sd in zip(ys, seeds)])
            maps = _raw(model, pad_to_multiple(degraded, multiple)[0])
            scores.append(float(embedding_distance(maps, reference, spread).mean()))
        best = min(range(len(candidates)), key=scores.__getitem__)
        chosen = [candidates[best]] * pairs
        distances = {
            "+".join(r) + f"@{s:g}": d for (r, s), d in zip(candidates, scores, strict=True)
        }
    else:
        gen = torch.Generator().manual_seed(seed)
        picks = torch.randint(0, len(recipes), (pairs,), generator=gen).tolist()
        chosen = [(recipes[k], float(severity)) for k in picks]
    inputs = torch.cat(
        [_degrade(y, r, s, sd) for y, (r, s), sd in zip(ys, chosen, seeds, strict=True)]
    )
    padded, size = pad_to_multiple(inputs, multiple)
    return PseudoPairs(
        inputs=padded,
        targets=torch.cat(ys),
        raw=_raw(model, padded),
        size=size,
        recipe=[r for r, _ in chosen],
        severity=[float(s) for _, s in chosen],
        distances=distances,
    )


def adapted_restoration(model: UDAIRBase, padded: Tensor, raw: Mapping[str, Tensor]) -> Tensor:
    """The network's restoration of a padded batch whose unadapted maps are ``raw``, through
    the (trainable) adapters, with the gradient reaching the adapters through the frozen
    decoder (``adapter_grad_to_decoder``)."""
    adapters = model.adapters()
    maps = {k: adapters[k](raw[k]) for k in LEVELS}
    previous = model.adapter_grad_to_decoder
    model.adapter_grad_to_decoder = True
    try:
        ctx = model._ctx(maps["g4"], maps["g3"], maps["g2"])
        return model.forward_padded(padded, ctx)
    finally:
        model.adapter_grad_to_decoder = previous


def _pair_loss(model: UDAIRBase, pairs: PseudoPairs) -> Tensor:
    out = unpad(adapted_restoration(model, pairs.inputs, pairs.raw), pairs.size)
    return F.l1_loss(out, pairs.targets)


# ------------------------------------------------------------------------------ test time
def pseudo_pair_tta(
    model: UDAIRBase,
    x: Tensor,
    bank: SourceBank,
    index: int | None,
    restore: Callable[[Tensor], Tensor],
    cfg: TTAConfig,
) -> tuple[Tensor, dict[str, Any]]:
    """Adapt to one image (1×3×H×W) by the pseudo-pair objective and restore it with
    ``restore``; the caller resets the model (:class:`~aioir.methods.udair.tta.
    UDAIRTestTimeAdapter`). Returns the output and the report."""
    from aioir.methods.udair.tta import (
        bank_patch_size,
        choose_reference,
        coral_objective,
        descend_with_early_stop,
        only_adapters_trainable,
        reinit_adapters,
        resolve_chooser,
        uses_statistics,
        working_image,
    )

    pre_adapted = bool(getattr(model, "adapters_enabled", False))
    model.eval()
    work = working_image(x, cfg.work_size, bank_patch_size(bank))
    raw = _raw(model, work)
    blind = index is None
    chooser = resolve_chooser(cfg.chooser, bank) if blind else None
    distances = None
    if index is None:
        index, distances = choose_reference(raw, bank, chooser or cfg.chooser)
    task = bank.task_names[index]
    with torch.no_grad():
        restored = model(work).clamp(0.0, 1.0)  # ŷ₀: the current weights
    pairs = make_pseudo_pairs(
        model,
        work,
        restored,
        task,
        bank,
        severity=cfg.pair_severity,
        pairs=cfg.pair_count,
        crop=cfg.pair_crop,
        seed=cfg.seed,
    )
    if not pre_adapted:  # untrained adapters: start from the identity
        reinit_adapters(model, cfg.seed, residual=True)
    params = only_adapters_trainable(model)
    model.set_adapters(True)
    adapters = model.adapters()
    reference = "statistics" if uses_statistics(bank, cfg.reference) else "mean_map"
    weight = cfg.pair_coral_weight
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    l1s: list[float] = []

    def objective() -> Tensor:
        l1 = _pair_loss(model, pairs)
        l1s.append(l1.detach().item())
        if weight <= 0:
            return l1
        maps = {k: adapters[k](raw[k]) for k in LEVELS}
        return l1 + weight * coral_objective(maps, bank, index, cfg.loss_scale, reference)

    losses, best, updates = descend_with_early_stop(
        model, optimizer, objective, cfg.max_steps, cfg.stop_tol, cfg.patience
    )
    for p in params:
        p.requires_grad_(False)
    out = restore(x)
    report = {
        "mode": "pseudo-pair",
        "task": task,
        "blind": blind,
        "chooser": chooser,
        "distances": None if distances is None else [float(d) for d in distances],
        "degradation": ["+".join(r) for r in pairs.recipe],
        "severity": pairs.severity,
        "severity_distances": pairs.distances,
        "losses": losses,
        "l1": l1s,
        "best_loss": best,
        "steps": updates,
        "pairs": int(pairs.targets.shape[0]),
        "crop": int(pairs.targets.shape[-1]),
        "work_size": tuple(work.shape[-2:]),
    }
    return out, report


# ------------------------------------------------------------------------------ a folder
@dataclasses.dataclass(frozen=True)
class PseudoPairAdaptConfig(FolderAdaptSettings):
    """Settings of :func:`adapt_folder_pseudo_pairs`.

    Args:
        task: every image's task (default: the blind chooser per image).
        steps: optimiser steps (minibatches).
        lr, weight_decay: AdamW settings.
        batch_size: random crops per step.
        crop: crop side (default: the bank's training patch size).
        severity: ``"match"`` (per image, once, on its working-resolution copy) or a fixed
            number in [0, 1].
        chooser: blind cluster choice (:data:`aioir.methods.udair.tta.CHOOSERS`).
        work_size: short side of the image used for the blind choice and the severity match.
        seed: seeds the adapters, the crops and the degradation draws.
    """

    severity: float | str = "match"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_severity(self.severity, "adapt")


@dataclasses.dataclass
class PseudoPairAdaptResult:
    """What :func:`adapt_folder_pseudo_pairs` did: per-image task, degradation and severity,
    the loss curve and the probe L1 before / after."""

    assignments: dict[str, str]
    degradations: dict[str, str]
    losses: list[float]
    initial_loss: float
    final_loss: float
    seconds: float
    config: PseudoPairAdaptConfig
    crop: int = 0
    chooser: str | None = None

    def summary(self) -> dict[str, Any]:
        """JSON-able record (stored in the saved model's metadata)."""
        counts: dict[str, int] = {}
        for task in self.assignments.values():
            counts[task] = counts.get(task, 0) + 1
        return {
            "method": "pseudo-pair",
            "images": len(self.assignments),
            "clusters": counts,
            "degradations": dict(self.degradations),
            "blind": self.config.task is None,
            "steps": self.config.steps,
            "lr": self.config.lr,
            "batch_size": self.config.batch_size,
            "crop": self.crop,
            "severity": self.config.severity,
            "chooser": self.chooser,
            "seed": self.config.seed,
            "initial_loss": self.initial_loss,
            "final_loss": self.final_loss,
            "seconds": round(self.seconds, 2),
        }


def _batch(
    teacher: UDAIRBase,
    images: list[Tensor],
    plans: list[tuple[tuple[str, ...] | None, float, list[tuple[str, ...]]]],
    indices: list[int],
    side: int,
    gen: torch.Generator,
    multiple: int,
) -> PseudoPairs:
    """Random crops of the chosen images, their targets (``teacher``'s restoration) and a fresh
    degradation draw each (the image's matched recipe, else one of its task's recipes)."""
    from aioir.methods.udair.adapt import random_square_crop

    crops = torch.stack([random_square_crop(images[i], side, gen) for i in indices])
    with torch.no_grad():
        targets = teacher(crops).clamp(0.0, 1.0)
    inputs, recipes, severities = [], [], []
    for b, i in enumerate(indices):
        recipe, severity, recipes_i = plans[i]
        if recipe is None:
            recipe = recipes_i[int(torch.randint(0, len(recipes_i), (), generator=gen))]
        seed = int(torch.randint(0, 2**62, (), generator=gen))
        inputs.append(_degrade(targets[b : b + 1], recipe, severity, seed))
        recipes.append(recipe)
        severities.append(severity)
    padded, size = pad_to_multiple(torch.cat(inputs), multiple)
    raw = _raw(teacher, padded)  # the DAM is frozen: the teacher's maps are the model's
    return PseudoPairs(padded, targets, raw, size, recipes, severities)


def adapt_folder_pseudo_pairs(
    model: nn.Module,
    images: str | os.PathLike[str] | Sequence[Any],
    config: PseudoPairAdaptConfig | None = None,
    *,
    progress: Callable[[int, float], None] | None = None,
) -> PseudoPairAdaptResult:
    """Train ``model``'s distribution adapters once on pseudo-pairs of a folder, in place.

    ``images``: a folder, image paths, or ``(name, 3×H×W tensor)`` pairs. Every image gets a
    task (``config.task`` or blind) and a degradation plan (matched recipe and severity, or the
    fixed severity with a recipe drawn per crop); each step takes ``batch_size`` random
    native-scale crops, restores them with a frozen copy of the starting model (``ŷ₀``),
    re-degrades them and lowers ``L1(f(x'), ŷ₀)`` over the adapters. Afterwards the model is in
    eval mode with its adapters enabled and residual (``aioir_config`` records
    ``adapter_residual=True``), ready for :func:`aioir.methods.udair.adapt.save_adapted`.
    """
    from aioir.methods.udair.adapt import _at_least, _load_images
    from aioir.methods.udair.tta import (
        bank_patch_size,
        choose_reference,
        only_adapters_trainable,
        reinit_adapters,
        resolve_chooser,
        working_image,
    )

    cfg = config or PseudoPairAdaptConfig()
    bank = getattr(model, "source_bank", None)
    if bank is None or not isinstance(model, UDAIRBase):
        raise ConfigError(
            "pseudo-pair adaptation needs a UDAIR model saved with its source bank "
            "(bank.safetensors)"
        )
    start = time.perf_counter()
    device = next(model.parameters()).device
    side = cfg.crop or bank_patch_size(bank)
    multiple = int(getattr(model, "size_multiple", 8))
    named = _load_images(images)
    tensors = [_at_least(t, side).to(device) for _, t in named]
    model.eval()
    chooser = None if cfg.task is not None else resolve_chooser(cfg.chooser, bank)
    fixed = bank.task_index(cfg.task) if cfg.task is not None else None
    plans: list[tuple[tuple[str, ...] | None, float, list[tuple[str, ...]]]] = []
    assignments, degradations = {}, {}
    for (name, _), t in zip(named, tensors, strict=True):
        work = working_image(t[None], cfg.work_size, side)
        index = (
            fixed if fixed is not None else choose_reference(_raw(model, work), bank, chooser)[0]
        )
        task = bank.task_names[index]
        recipes = task_recipes(task)
        if cfg.severity == "match":
            with torch.no_grad():
                restored = model(work).clamp(0.0, 1.0)
            pp = make_pseudo_pairs(
                model, work, restored, task, bank, severity="match", pairs=1,
                crop=max(work.shape[-2:]), seed=cfg.seed,
            )  # fmt: skip
            plans.append((pp.recipe[0], pp.severity[0], recipes))
            degradations[name] = "+".join(pp.recipe[0]) + f"@{pp.severity[0]:g}"
        else:
            plans.append((None, float(cfg.severity), recipes))
            degradations[name] = f"any@{float(cfg.severity):g}"
        assignments[name] = task

    teacher = copy.deepcopy(model).eval()  # ŷ₀ from the starting weights, never updated
    for p in teacher.parameters():
        p.requires_grad_(False)
    if not getattr(model, "adapters_enabled", False):
        reinit_adapters(model, cfg.seed, residual=True)
    params = only_adapters_trainable(model)
    model.set_adapters(True)
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)
    probe_gen = torch.Generator().manual_seed(cfg.seed + 1)
    probe_idx = (list(range(len(tensors))) * (cfg.batch_size // len(tensors) + 1))[
        : max(cfg.batch_size, len(tensors))
    ]
    probe = _batch(teacher, tensors, plans, probe_idx, side, probe_gen, multiple)
    with torch.no_grad():
        initial = float(_pair_loss(model, probe))
    losses: list[float] = []
    try:
        for step in range(cfg.steps):
            idx = torch.randint(0, len(tensors), (cfg.batch_size,), generator=gen).tolist()
            batch = _batch(teacher, tensors, plans, idx, side, gen, multiple)
            with torch.enable_grad():
                loss = _pair_loss(model, batch)
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
        final = float(_pair_loss(model, probe))
    config = copy.deepcopy(getattr(model, "aioir_config", None))
    if isinstance(config, dict):
        config.setdefault("overrides", {})["adapter_residual"] = True
        model.aioir_config = config
    model.eval()
    seconds = time.perf_counter() - start
    return PseudoPairAdaptResult(
        assignments, degradations, losses, initial, final, seconds, cfg, side, chooser
    )
