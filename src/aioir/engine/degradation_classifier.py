"""Training a :class:`~aioir.nn.degradation_classifier.DegradationClassifier` on synthetic crops.

The labels come with the synthesis: fixed crops of the training photos, each degraded by one
task of the data section at a random severity (:meth:`RestorationDataModule.synthetic_pairs`),
labelled with that task — or with ``clean`` when the degradation drawn is too light to matter
(the input within ``clean_above`` dB PSNR of its target: a near-zero severity, which would
otherwise teach the classifier that a clean-looking crop is as likely degraded as not);
``pale_items_per_task`` more per task come from the same photos rendered pale and flat (the
data's ``pale`` option), so that a pale clean photo is learned as clean and not as haze, and
``dark_items_per_task`` from them rendered dark (the ``dark`` option: night, dusk), so
that a dim clean photo is learned as clean and not as low light; ``extra_crops`` entries
``{data: {...}, items_per_task: N}`` add crops of the photos under any other data overrides
(e.g. ``{pale: 1.0, defocus: 1.0}``: pale *and* soft scenes, each its own target). With
``cross_fit`` the fit also trains two *held-out* classifiers, each on the crops of half of
the training photos (:func:`photo_folds`), and fits the gate on the verdicts each gives the
other half's crops: the verdicts the shipped classifier gives a photo it never saw, so the
gate learns how far to trust them (stacking; the head keeps the classifier trained on all
the photos). The crops are made once and kept in memory (half precision); training draws batches from them
with random flips, transposes and square sub-crops of ``min_crop`` … ``patch_size`` px,
cross-entropy, AdamW (linear warm-up, cosine decay), under bfloat16 autocast by default
(``precision: bf16-mixed``; ``"32"``: float32, several times faster on a CPU without native
bfloat16, such as one with AVX2 only, where bfloat16 is emulated). A filter-bank fit
trains one this way when its ``filter_bank.classifier`` is set (:mod:`aioir.engine.filter_bank`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Iterable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from aioir.engine.config import PLAIN_LOOP_PRECISIONS
from aioir.errors import ConfigError
from aioir.metrics import psnr
from aioir.nn.degradation_classifier import (
    DEFAULT_HIDDEN,
    DEFAULT_WIDTHS,
    DegradationClassifier,
    degradation_classifier,
)

__all__ = [
    "ClassifierOptions",
    "classifier_accuracy",
    "classifier_crops",
    "photo_folds",
    "train_classifier",
    "untrained_classifier",
]

log = logging.getLogger(__name__)


@dataclasses.dataclass
class ClassifierOptions:
    """How the classifier is made: its shape (``widths``, ``hidden``; ``highlight_powers``: a
    :class:`~aioir.nn.degradation_classifier.HighlightDegradationClassifier` reading the input's
    highlights at these powers; ``shadow_powers``, with them: a
    :class:`~aioir.nn.degradation_classifier.ShadowHighlightDegradationClassifier` reading its
    shadows too; ``shadow_bands`` ≥ 2, with both: a
    :class:`~aioir.nn.degradation_classifier.BandedShadowHighlightDegradationClassifier`
    reading the shadows of that many horizontal bands as well), its crops
    (``items_per_task`` plain, ``pale_items_per_task`` pale and ``dark_items_per_task`` dark
    ones per task, ``extra_crops``' ``{data: {overrides}, items_per_task: N}`` entries after
    them, ``patch_size`` px, seed salt ``salt``) and its training (``steps`` of
    ``batch_size``, peak ``lr``, ``weight_decay``, sub-crops from ``min_crop`` px, at
    ``precision`` ``bf16-mixed`` or ``32``); crops whose
    input is within ``clean_above`` dB of their target are labelled ``clean`` (``None``: never
    relabelled); ``cross_fit``: the gate reads held-out verdicts (module docstring)."""

    widths: list[int] = dataclasses.field(default_factory=lambda: list(DEFAULT_WIDTHS))
    hidden: int = DEFAULT_HIDDEN
    highlight_powers: list[float] = dataclasses.field(default_factory=list)
    shadow_powers: list[float] = dataclasses.field(default_factory=list)
    shadow_bands: int = 0
    items_per_task: int = 2000
    pale_items_per_task: int = 1000
    dark_items_per_task: int = 0
    patch_size: int = 128
    min_crop: int = 64
    steps: int = 8000
    batch_size: int = 48
    lr: float = 2e-3
    weight_decay: float = 1e-4
    salt: int = 11
    clean_above: float | None = 40.0
    extra_crops: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    cross_fit: bool = False
    precision: str = "bf16-mixed"

    def validate(self, where: str) -> ClassifierOptions:
        """Check the values; returns ``self``."""
        for key in ("hidden", "items_per_task", "patch_size", "steps", "batch_size"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{where}.{key}: must be ≥ 1")
        for key in ("pale_items_per_task", "dark_items_per_task"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{where}.{key}: must be ≥ 0")
        if not self.widths or min(self.widths) < 1:
            raise ConfigError(f"{where}.widths: give positive channel counts")
        for key in ("highlight_powers", "shadow_powers"):
            if any(not isinstance(p, int | float) or isinstance(p, bool) or p <= 0
                   for p in getattr(self, key)):  # fmt: skip
                raise ConfigError(f"{where}.{key}: give positive powers (e.g. [8, 32, 128])")
        if self.shadow_powers and not self.highlight_powers:
            raise ConfigError(f"{where}.shadow_powers: give highlight_powers too (read together)")
        bands = self.shadow_bands
        if isinstance(bands, bool) or not isinstance(bands, int) or bands < 0 or bands == 1:
            raise ConfigError(f"{where}.shadow_bands: expected 0 (none) or an integer ≥ 2")
        if bands and not self.shadow_powers:
            raise ConfigError(f"{where}.shadow_bands: give shadow_powers too (the bands' powers)")
        if not 1 <= self.min_crop <= self.patch_size:
            raise ConfigError(f"{where}.min_crop: must be in 1 … patch_size")
        if self.lr <= 0 or self.weight_decay < 0:
            raise ConfigError(f"{where}: lr must be > 0 and weight_decay ≥ 0")
        if self.precision not in PLAIN_LOOP_PRECISIONS:
            raise ConfigError(f"{where}.precision: expected {' or '.join(PLAIN_LOOP_PRECISIONS)}")
        if not isinstance(self.cross_fit, bool):
            raise ConfigError(f"{where}.cross_fit: expected true or false")
        for i, entry in enumerate(self.extra_crops):
            key = f"{where}.extra_crops[{i}]"
            if not isinstance(entry, dict) or set(entry) - {"data", "items_per_task"}:
                raise ConfigError(f"{key}: expected a mapping of data and items_per_task")
            if not isinstance(entry.get("data"), dict) or not entry["data"]:
                raise ConfigError(f"{key}.data: give the data section's keys to override")
            items = entry.get("items_per_task")
            if not isinstance(items, int) or isinstance(items, bool) or items < 0:
                raise ConfigError(f"{key}.items_per_task: must be an integer ≥ 0")
        return self


def classifier_crops(
    datamodules: list[tuple[Any, int]],
    patch_size: int,
    salt: int,
    progress: bool = True,
    clean_above: float | None = None,
) -> tuple[Tensor, Tensor, list[str], list[str]]:
    """Degraded crops (N×3×P×P, float16), their task labels (N), the classes (the first
    datamodule's tasks; each other one's must be among them: crops of some tasks only) and the
    photo each crop was cut from (N names), from each ``(datamodule, items per task)``; with
    ``clean_above`` (dB) and a ``clean`` task, crops whose input is at least that close to
    their target (PSNR) are labelled ``clean``."""
    names = list(datamodules[0][0].task_names)
    clean = names.index("clean") if clean_above is not None and "clean" in names else None
    inputs, labels, photos = [], [], []
    for i, (dm, items) in enumerate(datamodules):
        if set(dm.task_names) - set(names):
            raise ConfigError(f"classifier crops: tasks {dm.task_names} are not among {names}")
        if items < 1:
            continue
        specs = {task: dm.task_spec(task) for task in dm.task_names}
        pairs = dm.synthetic_pairs(specs, items, patch_size, salt=salt + i)
        loader = DataLoader(pairs, batch_size=64, shuffle=False)
        for batch in tqdm(loader, desc="classifier crops", disable=not progress, leave=False):
            inputs.append(batch["input"].half())
            photos += list(batch.get("name", [""] * len(batch["input"])))
            label = torch.tensor([names.index(task) for task in batch["task"]])
            if clean is not None:
                close = psnr(batch["input"].clamp(0, 1), batch["target"]) >= clean_above
                label = torch.where(close, clean, label)
            labels.append(label)
    return torch.cat(inputs), torch.cat(labels), names, photos


def photo_folds(photos: Iterable[str]) -> dict[str, int]:
    """Two folds of the photos, ``{name: 0 or 1}``: their sorted names taken in turn, so the
    folds are as equal as can be and each holds every source's photos (names sort by
    package)."""
    return {name: i % 2 for i, name in enumerate(sorted(set(photos)))}


def untrained_classifier(
    classes: Sequence[str], options: ClassifierOptions
) -> DegradationClassifier:
    """The classifier ``options`` describe for ``classes``, its weights as initialised (drawn
    from torch's global generator)."""
    return degradation_classifier(
        list(classes), options.widths, options.hidden, options.highlight_powers,
        options.shadow_powers, shadow_bands=options.shadow_bands,
    )  # fmt: skip


def train_classifier(
    inputs: Tensor,
    labels: Tensor,
    classes: list[str],
    options: ClassifierOptions,
    progress: bool = True,
) -> DegradationClassifier:
    """A classifier trained on ``inputs`` (N×3×P×P) and ``labels`` (N) as ``options`` say
    (module docstring); draws from torch's global generator. Returned in eval mode."""
    model = untrained_classifier(classes, options)
    optimizer = torch.optim.AdamW(model.parameters(), lr=options.lr,
                                  weight_decay=options.weight_decay)  # fmt: skip
    warmup = max(1, round(0.05 * options.steps))

    def factor(step: int) -> float:  # linear warm-up over 5 % of the steps, then cosine to 0
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / max(1, options.steps - warmup)))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    side, bf16 = inputs.shape[-1], options.precision == "bf16-mixed"
    model.train()
    bar = tqdm(range(options.steps), desc="training the classifier", disable=not progress,
               leave=False)  # fmt: skip
    loss = torch.zeros(())
    for step in bar:
        rows = torch.randint(len(inputs), (options.batch_size,))
        x = inputs[rows].float()
        if torch.rand(()) < 0.5:
            x = x.flip(-1)
        if torch.rand(()) < 0.5:
            x = x.transpose(-1, -2)
        crop = int(torch.randint(options.min_crop, side + 1, ()))
        top, left = torch.randint(0, side - crop + 1, (2,)).tolist()
        x = x[..., top : top + crop, left : left + crop]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), labels[rows])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % 100 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
    log.info("degradation classifier: %d steps, last loss %.3f", options.steps, loss.item())
    return model.eval()


@torch.no_grad()
def classifier_accuracy(model: DegradationClassifier, inputs: Tensor, labels: Tensor) -> float:
    """The fraction of ``inputs`` (N×3×H×W) whose most likely class is their label."""
    hits = 0
    for start in range(0, len(inputs), 64):
        logits = model(inputs[start : start + 64].float())
        hits += int((logits.argmax(dim=1) == labels[start : start + 64]).sum())
    return hits / max(len(inputs), 1)
