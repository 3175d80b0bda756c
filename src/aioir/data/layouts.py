"""Declarative dataset layouts and a checker for them (``aioir data check``).

A :class:`Layout` is data, not code: a tuple of :class:`Part` entries, each saying where a set of
images lives relative to the dataset root, whether it is paired (input ↔ target, matched by a
named rule from :data:`aioir.data.folders.PAIRING_RULES`), clean (ground-truth images degraded on
the fly, e.g. BSD400 + WED for denoising) or unpaired (real images without ground truth), how many
images it should hold, and whether it may be absent. :func:`check_layout` walks a tree against a
layout and reports every problem as one line; :meth:`Layout.paired_datasets` and
:meth:`Layout.image_datasets` build the datasets of one split.

Registered layouts (:data:`LAYOUTS`): ``promptir-3task``, ``promptir-5task``, ``udair``,
``paired`` and ``unpaired``. Counts follow ``docs/datasets.md``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, TextIO

import torch

from aioir.data.folders import (
    PairedFolderDataset,
    UnpairedFolderDataset,
    format_names,
    get_pairing_rule,
    match_pairs,
)
from aioir.errors import ConfigError
from aioir.io import list_images

__all__ = [
    "LAYOUTS",
    "PROMPTIR_TASKS",
    "UDAIR_FOLDER_TASKS",
    "UDAIR_TASKS",
    "Layout",
    "LayoutReport",
    "Part",
    "check_layout",
    "get_layout",
    "list_layouts",
    "main_check",
    "paired_layout",
    "unpaired_layout",
]

PartKind = Literal["paired", "clean", "unpaired"]


@dataclass(frozen=True)
class Part:
    """One set of images in a layout.

    Attributes:
        path: folder relative to the dataset root, POSIX (``"."`` is the root itself). For
            ``paired`` parts it holds ``input_dir`` and ``target_dir``; for ``clean`` and
            ``unpaired`` parts it holds the images.
        kind: ``paired`` (input ↔ target), ``clean`` (ground truth only; degraded on the fly) or
            ``unpaired`` (degraded images without ground truth).
        split: ``train``, ``val`` or ``test``.
        name: key of the part within its split (the key of :meth:`Layout.paired_datasets`).
        task: restoration task (``noise``, ``rain``, ``haze``, ``blur``, ``lowlight``,
            ``underwater``), or None.
        input_dir, target_dir: sub-folders of a ``paired`` part.
        pairing: pairing rule name (see :mod:`aioir.data.folders`).
        count: expected number of images (inputs for ``paired`` parts), or None to skip.
        optional: a missing folder is a note, not a problem (present folders are still checked).
        recursive: images may sit in sub-folders (RESIDE OTS ``part1..part4``).
    """

    path: str
    kind: PartKind
    split: str
    name: str
    task: str | None = None
    input_dir: str = "input"
    target_dir: str = "target"
    pairing: str = "name"
    count: int | None = None
    optional: bool = False
    recursive: bool = False


@dataclass(frozen=True)
class Layout:
    """A named dataset tree: a tuple of :class:`Part`. Build variants with :meth:`with_counts`."""

    name: str
    description: str
    parts: tuple[Part, ...]

    @property
    def splits(self) -> tuple[str, ...]:
        """The splits this layout has, in declaration order."""
        return tuple(dict.fromkeys(p.split for p in self.parts))

    def part(self, path: str) -> Part:
        """The part at ``path`` (ConfigError if there is none)."""
        for p in self.parts:
            if p.path == path:
                return p
        raise ConfigError(
            f"layout '{self.name}' has no part {path!r}; parts: "
            f"{', '.join(p.path for p in self.parts)}"
        )

    def with_counts(self, counts: Mapping[str, int | None]) -> Layout:
        """A copy with the expected counts of the parts at the given paths replaced."""
        for path in counts:
            self.part(path)  # raises on an unknown path
        parts = tuple(
            replace(p, count=counts[p.path]) if p.path in counts else p for p in self.parts
        )
        return replace(self, parts=parts)

    def _split_parts(self, split: str) -> list[Part]:
        if split not in self.splits:
            raise ConfigError(
                f"layout '{self.name}' has no split {split!r}; splits: {', '.join(self.splits)}"
            )
        return [p for p in self.parts if p.split == split]

    def paired_datasets(
        self,
        root: str | Path,
        split: str = "test",
        transform: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
        | None = None,
    ) -> dict[str, PairedFolderDataset]:
        """One :class:`PairedFolderDataset` per paired part of ``split``, keyed by part name.

        Optional parts whose folder is absent are skipped; anything else that is wrong raises
        :class:`~aioir.errors.DatasetLayoutError`.
        """
        root = Path(root)
        out: dict[str, PairedFolderDataset] = {}
        for p in self._split_parts(split):
            if p.kind != "paired" or (p.optional and not (root / p.path).is_dir()):
                continue
            out[p.name] = PairedFolderDataset(
                root / p.path,
                p.input_dir,
                p.target_dir,
                task=p.task,
                pairing=p.pairing,
                transform=transform,
                recursive=p.recursive,
            )
        return out

    def image_datasets(
        self,
        root: str | Path,
        split: str = "test",
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> dict[str, UnpairedFolderDataset]:
        """One :class:`UnpairedFolderDataset` per clean or unpaired part of ``split``.

        Clean parts (e.g. ``Train/Denoise``, ``test/denoise/bsd68``) are the ground truth of
        synthetic degradations; unpaired parts are real degraded images without ground truth.
        Optional parts whose folder is absent are skipped.
        """
        root = Path(root)
        return {
            p.name: UnpairedFolderDataset(root / p.path, recursive=p.recursive, transform=transform)
            for p in self._split_parts(split)
            if p.kind != "paired" and not (p.optional and not (root / p.path).is_dir())
        }


# --------------------------------------------------------------------------- the layouts
#: PromptIR/AdaIR task settings: the tasks of each, in index order.
PROMPTIR_TASKS: dict[str, tuple[str, ...]] = {
    "promptir-3task": ("noise", "rain", "haze"),
    "promptir-5task": ("noise", "rain", "haze", "blur", "lowlight"),
}


def _promptir_parts(tasks: tuple[str, ...]) -> tuple[Part, ...]:
    """The PromptIR/AdaIR tree (``Train/…`` and ``test/…``), restricted to ``tasks``."""
    parts = (
        Part("Train/Denoise", "clean", "train", "denoise", "noise", count=5144, recursive=True),
        Part("Train/Derain", "paired", "train", "derain", "rain", "rainy", "gt", "rain100l", 200),
        Part(
            "Train/Dehaze",
            "paired",
            "train",
            "dehaze",
            "haze",
            "synthetic",
            "original",
            "ots",
            72135,
            recursive=True,
        ),
        Part("Train/Deblur", "paired", "train", "deblur", "blur", "blur", "sharp", "name", 2103),
        Part("Train/Enhance", "paired", "train", "enhance", "lowlight", "low", "gt", "name", 485),
        Part("test/denoise/bsd68", "clean", "test", "bsd68", "noise", count=68),
        Part(
            "test/denoise/urban100", "clean", "test", "urban100", "noise", count=100, optional=True
        ),
        Part("test/denoise/kodak24", "clean", "test", "kodak24", "noise", count=24, optional=True),
        Part("test/derain/Rain100L", "paired", "test", "rain100l", "rain", count=100),
        Part("test/dehaze", "paired", "test", "sots", "haze", pairing="ots", count=500),
        Part("test/deblur/gopro", "paired", "test", "gopro", "blur", count=1111),
        Part("test/enhance/lol", "paired", "test", "lol", "lowlight", count=15),
    )
    return tuple(p for p in parts if p.task in tasks)


#: UDAIR source tasks in index order, with the toolkit's task name and (train, test) counts.
_UDAIR_SOURCE: tuple[tuple[str, str, int, int], ...] = (
    ("denoising", "noise", 1812, 336),
    ("dehazing", "haze", 1500, 561),
    ("deraining", "rain", 1568, 448),
    ("low-light", "lowlight", 1300, 200),
    ("underwater", "underwater", 700, 190),
)
#: UDAIR source tasks in index order (the layout's folder order).
UDAIR_TASKS: tuple[str, ...] = tuple(task for _, task, _, _ in _UDAIR_SOURCE)
#: UDAIR source folder names → task names.
UDAIR_FOLDER_TASKS: dict[str, str] = {folder: task for folder, task, _, _ in _UDAIR_SOURCE}

#: UDAIR real-world target sets: (folder, task, has ground truth).
_UDAIR_TARGET: tuple[tuple[str, str, bool], ...] = (
    ("denoising_polyu", "noise", True),
    ("dehazing_urhi", "haze", False),
    ("deraining_lhp", "rain", True),
    ("low-light_lime", "lowlight", False),
    ("underwater_ufo", "underwater", True),
)


def _udair_parts() -> tuple[Part, ...]:
    parts: list[Part] = []
    for split in ("train", "val", "test"):
        for folder, task, n_train, n_test in _UDAIR_SOURCE:
            count = {"train": n_train, "val": None, "test": n_test}[split]
            parts.append(
                Part(
                    f"{split}/{folder}",
                    "paired",
                    split,
                    folder,
                    task,
                    "images",
                    "labels",
                    count=count,
                    optional=split == "val",
                )
            )
    for folder, task, has_gt in _UDAIR_TARGET:
        if has_gt:
            parts.append(Part(f"test/{folder}", "paired", "test", folder, task, "images", "labels"))
        else:
            parts.append(Part(f"test/{folder}/images", "unpaired", "test", folder, task))
    return tuple(parts)


def paired_layout(
    input_dir: str = "input",
    target_dir: str = "target",
    pairing: str = "name",
    *,
    count: int | None = None,
    task: str | None = None,
) -> Layout:
    """A generic ``ROOT/{input_dir,target_dir}`` layout (split ``test``, part name ``data``)."""
    get_pairing_rule(pairing)  # validate early
    part = Part(".", "paired", "test", "data", task, input_dir, target_dir, pairing, count)
    return Layout("paired", f"{input_dir}/ and {target_dir}/ paired by rule '{pairing}'", (part,))


def unpaired_layout(*, recursive: bool = False, count: int | None = None) -> Layout:
    """A generic folder of images without ground truth (split ``test``, part name ``data``)."""
    part = Part(".", "unpaired", "test", "data", count=count, recursive=recursive)
    return Layout("unpaired", "a folder of images without ground truth", (part,))


#: Every registered layout, by name.
LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in (
        Layout(
            "promptir-3task",
            "PromptIR/AdaIR tree, 3-task parts (noise, rain, haze)",
            _promptir_parts(PROMPTIR_TASKS["promptir-3task"]),
        ),
        Layout(
            "promptir-5task",
            "PromptIR/AdaIR tree, 5-task parts (noise, rain, haze, blur, low light)",
            _promptir_parts(PROMPTIR_TASKS["promptir-5task"]),
        ),
        Layout(
            "udair",
            "UDAIR 10-dataset tree: {train,val,test}/<task>/{images,labels}",
            _udair_parts(),
        ),
        paired_layout(),
        unpaired_layout(),
    )
}


def list_layouts() -> list[str]:
    """Names of the registered layouts."""
    return list(LAYOUTS)


def get_layout(name: str) -> Layout:
    """The registered layout called ``name`` (ConfigError listing the names otherwise)."""
    try:
        return LAYOUTS[name]
    except KeyError:
        raise ConfigError(
            f"unknown dataset layout {name!r}; expected one of {', '.join(LAYOUTS)}"
        ) from None


# --------------------------------------------------------------------------- the checker
@dataclass
class LayoutReport:
    """Outcome of :func:`check_layout`: one line per problem, one line per finding."""

    root: Path
    layout: str
    strict_counts: bool = True
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when there are no problems."""
        return not self.problems

    def __str__(self) -> str:
        mode = "strict counts" if self.strict_counts else "counts as warnings"
        lines = [f"Checking {self.root} against layout '{self.layout}' ({mode})"]
        lines += [f"  {n}" for n in self.notes]
        lines += [f"  PROBLEM {p}" for p in self.problems]
        n = len(self.problems)
        lines.append("OK" if self.ok else f"FAILED: {n} problem{'s' if n != 1 else ''}")
        return "\n".join(lines)


def _join(path: str, sub: str) -> str:
    return sub if path == "." else f"{path}/{sub}"


def _images(n: int) -> str:
    return f"{n:,} image{'s' if n != 1 else ''}"


def _have(n: int) -> str:
    return "have" if n != 1 else "has"


def _check_count(report: LayoutReport, label: str, n: int, part: Part) -> None:
    if part.count is None or n == part.count:
        return
    line = f"{label}: {_images(n)}, expected {part.count:,}"
    if report.strict_counts:
        report.problems.append(line)
    else:
        report.notes.append(f"warning: {line}")


def _missing(report: LayoutReport, folder: Path, label: str) -> bool:
    """Record a problem and return True when ``folder`` is not a directory."""
    if folder.is_dir():
        return False
    report.problems.append(f"{label}: {'not a folder' if folder.exists() else 'missing folder'}")
    return True


def _check_paired(report: LayoutReport, root: Path, part: Part) -> None:
    folder = root / part.path
    inp, tgt = folder / part.input_dir, folder / part.target_dir
    in_label, tgt_label = _join(part.path, part.input_dir), _join(part.path, part.target_dir)
    missing_in = _missing(report, inp, in_label)
    if _missing(report, tgt, tgt_label) or missing_in:
        return
    inputs = list_images(inp, recursive=part.recursive)
    targets = list_images(tgt, recursive=part.recursive)
    for found, label in ((inputs, in_label), (targets, tgt_label)):
        if not found:
            report.problems.append(f"{label}: no images")
    if not inputs or not targets:
        return
    match = match_pairs(inp, tgt, part.pairing, inputs=inputs, targets=targets)
    label = str(root) if part.path == "." else part.path
    if match.unmatched_inputs:
        n = len(match.unmatched_inputs)
        report.problems.append(
            f"{label}: {_images(n)} in {part.input_dir}/ {_have(n)} no partner in "
            f"{part.target_dir}/ ({format_names(match.unmatched_inputs)})"
        )
    if match.unmatched_targets:
        n = len(match.unmatched_targets)
        report.problems.append(
            f"{label}: {_images(n)} in {part.target_dir}/ {_have(n)} no partner in "
            f"{part.input_dir}/ ({format_names(match.unmatched_targets)})"
        )
    if match.ambiguous_targets:
        groups = match.ambiguous_targets
        report.problems.append(
            f"{tgt_label}: {len(groups):,} pairing key{'s' if len(groups) != 1 else ''} "
            f"{'match' if len(groups) != 1 else 'matches'} several images "
            f"({format_names(groups[0])})"
        )
    _check_count(report, in_label, len(inputs), part)
    rule = get_pairing_rule(part.pairing)
    report.notes.append(
        f"{part.path}: {len(match.pairs):,} pair{'s' if len(match.pairs) != 1 else ''} "
        f"({part.input_dir} -> {part.target_dir}, "
        f"rule '{rule.name}': {rule.description}; {len(targets):,} {part.target_dir} images)"
    )


def _check_images(report: LayoutReport, root: Path, part: Part) -> None:
    images = list_images(root / part.path, recursive=part.recursive)
    label = str(root) if part.path == "." else part.path
    if not images:
        report.problems.append(f"{label}: no images")
        return
    _check_count(report, label, len(images), part)
    report.notes.append(f"{label}: {_images(len(images))} ({part.kind})")


def check_layout(
    root: str | Path, layout: Layout | str, *, strict_counts: bool = True
) -> LayoutReport:
    """Check the tree under ``root`` against ``layout`` (a :class:`Layout` or registered name).

    Every missing folder, empty folder, file without a partner and (with ``strict_counts``)
    wrong count becomes one line in ``report.problems``; what was found goes to
    ``report.notes``, and so do count mismatches when ``strict_counts`` is False. Never raises
    for a broken tree (only :class:`ConfigError` for an unknown layout name).
    """
    if isinstance(layout, str):
        layout = get_layout(layout)
    root = Path(root)
    report = LayoutReport(root=root, layout=layout.name, strict_counts=strict_counts)
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "dataset root does not exist"
        report.problems.append(f"{root}: {what}")
        return report
    for part in layout.parts:
        folder = root / part.path
        if part.optional and not folder.exists():
            report.notes.append(f"{part.path}: optional, not present")
            continue
        if part.path != "." and _missing(report, folder, part.path):
            continue
        if part.kind == "paired":
            _check_paired(report, root, part)
        else:
            _check_images(report, root, part)
    return report


def main_check(
    root: str | Path,
    layout_name: str | Layout,
    strict: bool = True,
    *,
    file: TextIO | None = None,
) -> int:
    """Print the report of :func:`check_layout` and return the exit code: 0 ok, 1 problems.

    The body of ``aioir data check ROOT --layout NAME [--no-strict-counts]``. An unknown layout
    name raises :class:`ConfigError` (one line, for the CLI's error handler).
    """
    report = check_layout(root, layout_name, strict_counts=strict)
    print(report, file=file if file is not None else sys.stdout)
    return 0 if report.ok else 1
