"""Training/validation pairs synthesised on the fly from clean photos and registered degradations.

:class:`SyntheticDegradationDataset` turns a set of clean images and a task specification into
``(degraded, clean)`` patches. Indexing is stateless and seeded:

* the index encodes the task explicitly: ``index = task_id * per_task + j`` with image
  ``j % n_images`` (images sorted by file name), so ``task_indices`` can feed
  :class:`aioir.data.samplers.TaskBalancedBatchSampler`;
* ``deterministic=True`` (validation/test): everything random about item ``index`` — crop,
  degradation type, severity, parameters, noise — comes from a generator seeded with
  ``seed_from_name(f"{task}/{image name}/{repeat}", seed)``, so it does not depend on worker
  count, access order or the order in which the images were listed;
* training: a generator seeded from ``(seed, epoch, index)``; call :meth:`set_epoch` each epoch.

Patches are cropped *before* degrading (cheap on large photos), with up to ``margin`` pixels of
real context on each side that are cut away afterwards, so blur kernels and other neighbourhood
operations do not see artificial borders. Images smaller than the patch are bicubic-upscaled.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeAlias

import torch
from torch.utils.data import Dataset

from aioir.data.transforms import (
    dark_jitter,
    defocus_jitter,
    ensure_min_size,
    grey_jitter,
    grey_rendering,
    high_key_jitter,
    low_key_jitter,
    pale_jitter,
    photometric_jitter,
    random_crop_box,
    random_flip_rotate,
    white_balance_jitter,
)
from aioir.degradations import (
    TIERS,
    Compose,
    Degradation,
    available_degradations,
    canonical_order,
    degradation_class,
    degradation_cutmix,
    seed_from_name,
    severity_from_tier,
)
from aioir.degradations.base import uniform
from aioir.errors import ConfigError, DatasetLayoutError
from aioir.tasks import COMPOSITE_SEPARATOR, TASKS, canonical_task, split_composite

__all__ = [
    "COMPOSITE_SEPARATOR",
    "DegradationFactory",
    "Severity",
    "SyntheticDegradationDataset",
    "TaskSpec",
    "composite_parts",
]

#: A severity: ``"random"`` (uniform in [0, 1]), a tier name, a float in [0, 1] or a range.
Severity: TypeAlias = str | float | tuple[float, float]
#: A custom sampler of degradations: ``(severity, generator) -> Degradation``.
DegradationFactory: TypeAlias = Callable[[float, torch.Generator], Degradation]


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """How one task's degradations are drawn.

    ``degradations``: registered names and/or factories ``(severity, generator) -> Degradation``,
    chosen uniformly per item; empty means every registered degradation of the task (the mapping
    key must then be one of :data:`aioir.tasks.TASKS`). ``severity`` overrides the
    dataset's severity for this task. Example — σ uniform in [0, 50] plus camera noise::

        TaskSpec(("camera_noise", lambda s, g: GaussianNoise(sigma=50 * uniform(g, 0, 1))))

    A **composite task** is named by its components joined with ``+`` (``haze+rain``,
    ``lowlight+haze+rain``) and has no degradations of its own: each item draws one degradation
    of every component (its spec in the same mapping, else all registered degradations of that
    known task; each with its own severity draw) and applies them in physical order
    (:func:`aioir.degradations.canonical_order`: haze → rain → blur → low light → noise → jpeg).
    A composite's ``severity`` applies to the components that have none of their own.
    """

    degradations: Sequence[str | DegradationFactory] = ()
    severity: Severity | None = None


def composite_parts(task: str) -> tuple[str, ...]:
    """The component tasks of a composite task name (``"lowlight+haze"`` → ``("lowlight",
    "haze")``); ``()`` for a plain task. ConfigError for an empty or repeated part."""
    if COMPOSITE_SEPARATOR not in task:
        return ()
    parts = tuple(p.strip() for p in split_composite(task))
    if any(not p for p in parts):
        raise ConfigError(f"tasks: composite task {task!r} has an empty component")
    if len(set(parts)) != len(parts):
        raise ConfigError(f"tasks: composite task {task!r} repeats a component")
    return parts


def _check_severity(value: Severity, where: str) -> None:
    if isinstance(value, str):
        if value != "random" and value not in TIERS:
            raise ConfigError(
                f"{where}: severity {value!r} is unknown; use 'random', {', '.join(TIERS)}, a float or (lo, hi)"
            )
        return
    if isinstance(value, (int, float)):
        if not 0.0 <= float(value) <= 1.0:
            raise ConfigError(f"{where}: severity {value} must lie in [0, 1]")
        return
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{where}: severity {value!r} is not a tier, a float or (lo, hi)"
        ) from None
    if not 0.0 <= lo <= hi <= 1.0:
        raise ConfigError(f"{where}: severity range {value!r} must satisfy 0 ≤ lo ≤ hi ≤ 1")


def _draw_severity(value: Severity, generator: torch.Generator) -> float:
    if value == "random":
        return uniform(generator, 0.0, 1.0)
    if isinstance(value, (str, int, float)):
        return severity_from_tier(value, generator)
    lo, hi = (float(v) for v in value)
    return uniform(generator, lo, hi)


def _strength(name: str, value: float) -> float:
    """A clean-patch jitter strength, checked to lie in [0, 1]."""
    if not 0.0 <= float(value) <= 1.0:
        raise ConfigError(f"{name} strength must lie in [0, 1], got {value}")
    return float(value)


class SyntheticDegradationDataset(Dataset[dict[str, Any]]):
    """Clean images + degradation spec → ``dict(input, target, task_id, task, name[, label_map])``.

    Args:
        images: a folder of clean images (not recursive) or a list of image paths. Images are
            identified by file name, which must be unique; they are decoded once and cached in
            memory as 8-bit tensors.
        tasks: task names (all registered degradations of each) or ``{name: TaskSpec}``;
            ``a+b[+c]`` names a composite task (see :class:`TaskSpec`). ``task_id`` is the
            position in this sequence/mapping (not in ``TASKS``).
        patch_size: side of the square patches; ``None`` returns whole images.
        severity: default severity for every task (see :data:`Severity`).
        seed: base seed.
        deterministic: derive everything from (seed, image name, task) — for validation/test.
        cutmix: ABAIR degradation CutMix: the item's degradation plus 1–2 degradations of other
            tasks share the patch by rectangles; ``label_map`` (H×W int64) holds 0 for clean
            pixels and ``task_id + 1`` elsewhere. Needs at least two tasks.
        length: items per task (default: the number of images; images are cycled).
        augment: ``"d8"``, ``"udair"`` (:func:`random_flip_rotate`) or ``"none"``; default
            ``"d8"`` when training and ``"none"`` when deterministic.
        margin: context pixels kept around a patch while degrading.
        photometric: strength in [0, 1] of a random exposure/contrast/saturation change of the
            clean patch before degrading (:func:`~aioir.data.transforms.photometric_jitter`;
            input and target share it); 0 (default) draws nothing, so items stay as before.
        white_balance: strength in [0, 1] of a random colour-temperature/tint change of the
            clean patch, after ``photometric`` (:func:`~aioir.data.transforms.white_balance_jitter`;
            input and target share it); 0 (default) draws nothing.
        pale: probability in [0, 1] that the clean patch is rendered pale and flat, last
            (:func:`~aioir.data.transforms.pale_jitter`; input and target share it): pale
            scenes that are not hazy; 0 (default) draws nothing.
        dark: probability in [0, 1] that the clean patch is rendered dark, after ``pale``
            (:func:`~aioir.data.transforms.dark_jitter`; input and target share it): dim
            scenes that are not under-exposed; 0 (default) draws nothing.
        defocus: probability in [0, 1] that the clean patch is rendered out of focus, after
            ``dark`` (:func:`~aioir.data.transforms.defocus_jitter`; input and target share
            it): bokeh that is not blur; 0 (default) draws nothing.
        high_key: probability in [0, 1] that the clean patch is rendered high-key, after
            ``defocus`` (:func:`~aioir.data.transforms.high_key_jitter`; input and target share
            it): bright, near-white scenes that are not hazy; 0 (default) draws nothing.
        low_key: probability in [0, 1] that the clean patch is rendered low-key, after
            ``high_key`` (:func:`~aioir.data.transforms.low_key_jitter`; input and target share
            it): dark scenes with bright accents that are not under-exposed; 0 (default) draws
            nothing.
        grey: probability in [0, 1] that the patch is a black-and-white photo, last: the clean
            patch and, after degrading, the input rendered grey
            (:func:`~aioir.data.transforms.grey_jitter`), so noise is the same in every channel
            as in a greyscale file; 0 (default) draws nothing.
        shared_crops: with ``deterministic``, crop every task's item of an image at the same
            place (seeded by image name and repeat only), so the columns of a benchmark show the
            same scenes; the degradations still differ per task.
    """

    def __init__(
        self,
        images: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        tasks: Sequence[str] | Mapping[str, TaskSpec | Sequence[str]],
        patch_size: int | None = 128,
        severity: Severity = "random",
        seed: int = 0,
        deterministic: bool = False,
        cutmix: bool = False,
        length: int | None = None,
        *,
        augment: Literal["d8", "udair", "none"] | None = None,
        margin: int = 16,
        photometric: float = 0.0,
        white_balance: float = 0.0,
        pale: float = 0.0,
        dark: float = 0.0,
        defocus: float = 0.0,
        high_key: float = 0.0,
        low_key: float = 0.0,
        shared_crops: bool = False,
        grey: float = 0.0,
    ) -> None:
        self.paths = self._resolve_images(images)
        self.names = [p.name for p in self.paths]
        self.specs = self._resolve_tasks(tasks)
        self.task_names = list(self.specs)
        #: specs of composite components that are not tasks of their own (known tasks' defaults)
        self.component_specs = self._resolve_components(self.specs)
        if patch_size is not None and int(patch_size) < 1:
            raise ConfigError(f"patch_size must be positive or None, got {patch_size}")
        self.patch_size = None if patch_size is None else int(patch_size)
        _check_severity(severity, "severity")
        self.severity = severity
        self.seed = int(seed)
        self.deterministic = bool(deterministic)
        if cutmix and len(self.task_names) < 2:
            raise ConfigError("cutmix needs at least two tasks")
        self.cutmix = bool(cutmix)
        if length is not None and int(length) < 1:
            raise ConfigError(f"length (items per task) must be positive, got {length}")
        self.per_task = len(self.paths) if length is None else int(length)
        mode = augment if augment is not None else ("none" if deterministic else "d8")
        if mode not in ("d8", "udair", "none"):
            raise ConfigError(f"augment must be 'd8', 'udair' or 'none', got {augment!r}")
        self.augment: Literal["d8", "udair", "none"] = mode
        if int(margin) < 0:
            raise ConfigError(f"margin must be ≥ 0, got {margin}")
        self.margin = int(margin)
        self.photometric = _strength("photometric", photometric)
        self.white_balance = _strength("white_balance", white_balance)
        self.pale = _strength("pale", pale)
        self.dark = _strength("dark", dark)
        self.defocus = _strength("defocus", defocus)
        self.high_key = _strength("high_key", high_key)
        self.low_key = _strength("low_key", low_key)
        self.grey = _strength("grey", grey)
        if shared_crops and not deterministic:
            raise ConfigError("shared_crops needs deterministic=True")
        self.shared_crops = bool(shared_crops)
        self.epoch = 0
        self._cache: dict[int, torch.Tensor] = {}

    # ------------------------------------------------------------------ construction helpers
    @staticmethod
    def _resolve_images(
        images: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    ) -> list[Path]:
        from aioir.io import list_images

        if isinstance(images, (str, os.PathLike)):
            folder = Path(images)
            if not folder.is_dir():
                raise DatasetLayoutError(f"{folder}: clean-image folder does not exist")
            paths = list_images(folder)
            where = str(folder)
        else:
            paths = [Path(p) for p in images]
            where = "images"
        if not paths:
            raise DatasetLayoutError(f"{where}: no clean images found")
        paths = sorted(paths, key=lambda p: (p.name, str(p)))
        names = [p.name for p in paths]
        for a, b in itertools.pairwise(names):
            if a == b:
                raise DatasetLayoutError(f"{where}: two clean images share the file name {a!r}")
        return paths

    @staticmethod
    def _resolve_tasks(
        tasks: Sequence[str] | Mapping[str, TaskSpec | Sequence[str]],
    ) -> dict[str, TaskSpec]:
        if isinstance(tasks, str):
            tasks = [tasks]
        items = (
            list(tasks.items()) if isinstance(tasks, Mapping) else [(t, TaskSpec()) for t in tasks]
        )
        if not items:
            raise ConfigError("tasks: need at least one task")
        specs: dict[str, TaskSpec] = {}
        for alias, spec in items:
            name = canonical_task(alias)
            if name in specs:
                raise ConfigError(f"tasks: task {name!r} is given twice")
            if not isinstance(spec, TaskSpec):
                spec = TaskSpec(degradations=tuple(spec))
            if composite_parts(name):  # drawn from its components (_resolve_components)
                if tuple(spec.degradations):
                    raise ConfigError(
                        f"tasks[{name!r}]: a composite task takes its components' degradations; "
                        "give only a severity"
                    )
                if spec.severity is not None:
                    _check_severity(spec.severity, f"tasks[{name!r}].severity")
                specs[name] = TaskSpec((), spec.severity)
                continue
            degs = tuple(spec.degradations)
            if not degs:
                if name not in TASKS:
                    raise ConfigError(
                        f"tasks: {name!r} is not a known task ({', '.join(TASKS)}); give its degradations"
                    )
                degs = tuple(available_degradations(name))
                if not degs:
                    raise ConfigError(f"tasks: no degradation is registered for task {name!r}")
            for d in degs:
                if isinstance(d, str):
                    try:
                        degradation_class(d)
                    except KeyError as exc:
                        raise ConfigError(f"tasks[{name!r}]: {exc.args[0]}") from None
                elif not callable(d):
                    raise ConfigError(f"tasks[{name!r}]: {d!r} is neither a name nor a factory")
            if spec.severity is not None:
                _check_severity(spec.severity, f"tasks[{name!r}].severity")
            specs[name] = TaskSpec(degradations=degs, severity=spec.severity)
        return specs

    @staticmethod
    def _resolve_components(specs: Mapping[str, TaskSpec]) -> dict[str, TaskSpec]:
        """The specs of the composite tasks' components that are not tasks of their own."""
        out: dict[str, TaskSpec] = {}
        for name in specs:
            for part in composite_parts(name):
                if part not in specs and part not in out:
                    if part not in TASKS:
                        raise ConfigError(
                            f"tasks[{name!r}]: component {part!r} is neither a task of this "
                            f"spec nor a known task ({', '.join(TASKS)})"
                        )
                    out.update(SyntheticDegradationDataset._resolve_tasks([part]))
        return out

    # ------------------------------------------------------------------ public API
    def __len__(self) -> int:
        return len(self.task_names) * self.per_task

    @property
    def task_indices(self) -> dict[int, list[int]]:
        """``{task_id: [dataset indices of that task]}`` for a task-balanced sampler."""
        n = self.per_task
        return {t: list(range(t * n, (t + 1) * n)) for t in range(len(self.task_names))}

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch (training mode draws fresh crops and degradations per epoch)."""
        self.epoch = int(epoch)

    def locate(self, index: int) -> tuple[int, int, int]:
        """``(task_id, image index, repeat)`` of dataset item ``index``."""
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        task_id, j = divmod(index, self.per_task)
        repeat, image_idx = divmod(j, len(self.paths))
        return task_id, image_idx, repeat

    def photo_name(self, index: int) -> str:
        """The name of the photo item ``index`` is cut from (the photo is not loaded)."""
        return self.names[self.locate(int(index))[1]]

    def item_seed(self, index: int) -> int:
        """The seed of item ``index``'s generator (see the module docstring)."""
        task_id, image_idx, repeat = self.locate(index)
        if self.deterministic:
            key = f"{self.task_names[task_id]}/{self.names[image_idx]}/{repeat}"
        else:
            key = f"train/{self.epoch}/{index}"
        return seed_from_name(key, self.seed)

    def __getitem__(self, index: int) -> dict[str, Any]:
        task_id, image_idx, _ = self.locate(int(index))
        gen = torch.Generator().manual_seed(self.item_seed(int(index)))
        clean = self._image(image_idx)
        _, h, w = clean.shape
        p = self.patch_size
        if p is None:
            top, left, ph, pw = 0, 0, h, w
            region = clean
            t0 = l0 = 0
        else:
            crop_gen = gen
            if self.shared_crops:
                _, _, repeat = self.locate(int(index))
                key = f"crop/{self.names[image_idx]}/{repeat}"
                crop_gen = torch.Generator().manual_seed(seed_from_name(key, self.seed))
            top, left = random_crop_box(h, w, p, crop_gen)
            ph = pw = p
            t0, l0 = max(0, top - self.margin), max(0, left - self.margin)
            t1, l1 = min(h, top + p + self.margin), min(w, left + p + self.margin)
            region = clean[:, t0:t1, l0:l1]
        region = region.float().div_(255.0)[None]
        if self.photometric > 0.0:
            region = photometric_jitter(region, gen, self.photometric)
        if self.white_balance > 0.0:
            region = white_balance_jitter(region, gen, self.white_balance)
        if self.pale > 0.0:
            region = pale_jitter(region, gen, self.pale)
        if self.dark > 0.0:
            region = dark_jitter(region, gen, self.dark)
        if self.defocus > 0.0:
            region = defocus_jitter(region, gen, self.defocus)
        if self.high_key > 0.0:
            region = high_key_jitter(region, gen, self.high_key)
        if self.low_key > 0.0:
            region = low_key_jitter(region, gen, self.low_key)
        grey = False
        if self.grey > 0.0:
            region, grey = grey_jitter(region, gen, self.grey)

        degradation = self._draw(task_id, gen)
        label_map: torch.Tensor | None = None
        if self.cutmix:
            others = [t for t in range(len(self.task_names)) if t != task_id]
            k = 1 + int(torch.randint(0, min(2, len(others)), (), generator=gen))
            perm = torch.randperm(len(others), generator=gen)[:k].tolist()
            extra = [others[i] for i in perm]
            degs = [degradation] + [self._draw(t, gen) for t in extra]
            result = degradation_cutmix(
                region, degs, gen, classes=[t + 1 for t in [task_id, *extra]]
            )
            degraded, label_map = result.degraded[0], result.label_map[0]
        else:
            degraded = degradation.apply(region, gen)[0]
        degraded = degraded.clamp(0.0, 1.0)
        if grey:  # a greyscale file holds one value per pixel, whatever was added to it
            degraded = grey_rendering(degraded)

        dt, dl = top - t0, left - l0
        pair = [degraded[:, dt : dt + ph, dl : dl + pw], region[0, :, dt : dt + ph, dl : dl + pw]]
        if label_map is not None:
            pair.append(label_map[dt : dt + ph, dl : dl + pw])
        if self.augment != "none":
            pair = random_flip_rotate(pair, gen, mode=self.augment)
        item: dict[str, Any] = {
            "input": pair[0].contiguous(),
            "target": pair[1].contiguous(),
            "task_id": task_id,
            "task": self.task_names[task_id],
            "name": self.names[image_idx],
        }
        if label_map is not None:
            item["label_map"] = pair[2].contiguous()
        return item

    # ------------------------------------------------------------------ internals
    def _draw(self, task_id: int, gen: torch.Generator) -> Degradation:
        name = self.task_names[task_id]
        spec = self.specs[name]
        parts = composite_parts(name)
        if not parts:
            return self._draw_spec(name, spec, self.severity, gen)
        default = spec.severity if spec.severity is not None else self.severity
        drawn = [
            self._draw_spec(part, self.specs.get(part) or self.component_specs[part], default, gen)
            for part in parts
        ]
        return Compose(canonical_order(drawn))

    @staticmethod
    def _draw_spec(
        name: str, spec: TaskSpec, default: Severity, gen: torch.Generator
    ) -> Degradation:
        """One degradation of a plain task's spec (its own severity, else ``default``)."""
        degs = spec.degradations
        choice = degs[int(torch.randint(0, len(degs), (), generator=gen))]
        severity = _draw_severity(spec.severity if spec.severity is not None else default, gen)
        if isinstance(choice, str):
            return degradation_class(choice).sample(severity, gen)
        out = choice(severity, gen)
        if not isinstance(out, Degradation):
            raise ConfigError(
                f"tasks[{name!r}]: a factory returned {type(out).__name__}, not a Degradation"
            )
        return out

    def _image(self, image_idx: int) -> torch.Tensor:
        """Clean image ``image_idx`` as a cached uint8 ``3×H×W`` tensor, at least patch-sized."""
        cached = self._cache.get(image_idx)
        if cached is not None:
            return cached
        from aioir.io import read_image

        rgb = torch.from_numpy(read_image(self.paths[image_idx])).permute(2, 0, 1)
        if self.patch_size is not None:
            rgb = ensure_min_size(rgb.float(), self.patch_size)
        img = rgb.mul(255.0).round_().clamp_(0, 255).to(torch.uint8).contiguous()
        self._cache[image_idx] = img
        return img
