"""Folder datasets: paired (degraded input ↔ ground truth) and unpaired (a folder of images).

Pairing rules — how an input file finds its ground-truth partner — are defined here and nowhere
else (:data:`PAIRING_RULES`). Each rule is a pair of small documented functions that map a file
name to a *match key*; an input and a target pair up when their keys are equal:

=============  =======================================  ==========================================
rule           input → key                              target → key
=============  =======================================  ==========================================
``name``       file name (``0001.png``)                 file name
``stem``       stem (``0001.jpg`` → ``0001``)           stem (``0001.png`` → ``0001``)
``rain100l``   ``rain-N.ext`` → ``norain-N.ext``        file name (``norain-N.ext``)
``ots``        ``XXXX_A_B.jpg`` → ``XXXX``              stem (``XXXX.jpg`` / ``XXXX.png``)
=============  =======================================  ==========================================

``ots`` is many-to-one (RESIDE OTS has up to 35 hazy versions of each clean image); the others
are one-to-one, so a target without an input is a mismatch too.

Datasets are stateless: ``ds[i]`` depends on ``i`` only, so any number of workers is safe.
Images are returned as CHW float32 tensors in [0, 1] (RGB).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath

import numpy as np
import torch
from torch.utils.data import Dataset

from aioir.errors import ConfigError, DatasetLayoutError
from aioir.io import list_images, read_image

__all__ = [
    "PAIRING_RULES",
    "PairMatch",
    "PairedFolderDataset",
    "PairingRule",
    "UnpairedFolderDataset",
    "format_names",
    "get_pairing_rule",
    "match_pairs",
]

#: How many unmatched names an error message shows before "…".
_SHOW = 3


# --------------------------------------------------------------------------- pairing rules
def _key_name(name: str) -> str:
    """``name`` rule: the file name itself."""
    return name


def _key_stem(name: str) -> str:
    """``stem`` rule: the file name without its suffix (a PNG target for a JPG input)."""
    return PurePath(name).stem


_RAIN_INPUT = re.compile(r"rain-(\d+)(\.[^.]+)")


def _key_rain100l_input(name: str) -> str | None:
    """``rain100l`` input: ``rain-N.ext`` → ``norain-N.ext`` (Rain100L/RainTrainL), else None."""
    m = _RAIN_INPUT.fullmatch(name)
    return f"norain-{m.group(1)}{m.group(2)}" if m else None


def _key_ots_input(name: str) -> str | None:
    """``ots`` input: hazy ``XXXX_A_B.jpg`` → ``XXXX`` (prefix before the first "_"), else None."""
    stem = PurePath(name).stem
    prefix, sep, _ = stem.partition("_")
    return prefix if sep and prefix else None


@dataclass(frozen=True)
class PairingRule:
    """How input files find their target: equal keys pair up.

    Attributes:
        name: registry name (``name``, ``stem``, ``rain100l``, ``ots``).
        description: one line for reports and docs.
        input_key: input file name → key, or None when the name does not fit the rule.
        target_key: target file name → key.
        one_to_one: when True, every target must be used by exactly one input.
    """

    name: str
    description: str
    input_key: Callable[[str], str | None]
    target_key: Callable[[str], str]
    one_to_one: bool = True


#: The standard pairing rules, by name.
PAIRING_RULES: dict[str, PairingRule] = {
    r.name: r
    for r in (
        PairingRule("name", "same file name", _key_name, _key_name),
        PairingRule("stem", "same stem, any suffix", _key_stem, _key_stem),
        PairingRule("rain100l", "rain-N.ext <-> norain-N.ext", _key_rain100l_input, _key_name),
        PairingRule(
            "ots", "XXXX_A_B.ext <-> XXXX.jpg|png", _key_ots_input, _key_stem, one_to_one=False
        ),
    )
}


def get_pairing_rule(rule: str | PairingRule) -> PairingRule:
    """Return the :class:`PairingRule` named ``rule`` (a rule object is passed through)."""
    if isinstance(rule, PairingRule):
        return rule
    try:
        return PAIRING_RULES[rule]
    except KeyError:
        raise ConfigError(
            f"unknown pairing rule {rule!r}; expected one of {', '.join(PAIRING_RULES)}"
        ) from None


def format_names(names: Sequence[str], show: int = _SHOW) -> str:
    """``a.png, b.png, c.png, …``: the first ``show`` names, then an ellipsis if there are more."""
    head = ", ".join(names[:show])
    return head + (", …" if len(names) > show else "")


@dataclass
class PairMatch:
    """Result of :func:`match_pairs`; names are relative to their folder (POSIX)."""

    pairs: list[tuple[Path, Path]] = field(default_factory=list)
    unmatched_inputs: list[str] = field(default_factory=list)
    unmatched_targets: list[str] = field(default_factory=list)
    #: groups of target names that share one key (e.g. ``0001.jpg`` and ``0001.png`` under ``ots``)
    ambiguous_targets: list[list[str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every input has exactly one target (and, one-to-one, vice versa)."""
        return not (self.unmatched_inputs or self.unmatched_targets or self.ambiguous_targets)


def _rel(path: Path, folder: Path) -> str:
    return path.relative_to(folder).as_posix()


def match_pairs(
    input_folder: Path,
    target_folder: Path,
    rule: str | PairingRule = "name",
    *,
    recursive: bool = False,
    inputs: Sequence[Path] | None = None,
    targets: Sequence[Path] | None = None,
) -> PairMatch:
    """Pair the images of two folders by ``rule`` (keys are computed from file names only).

    ``inputs``/``targets`` may be given to reuse listings already made; otherwise the folders
    are listed with :func:`aioir.io.list_images`. Pairs are in sorted input order.
    """
    rule = get_pairing_rule(rule)
    if inputs is None:
        inputs = list_images(input_folder, recursive=recursive)
    if targets is None:
        targets = list_images(target_folder, recursive=recursive)
    by_key: dict[str, list[Path]] = {}
    for t in targets:
        by_key.setdefault(rule.target_key(t.name), []).append(t)
    result = PairMatch()
    result.ambiguous_targets = [
        [_rel(t, target_folder) for t in ts] for ts in by_key.values() if len(ts) > 1
    ]
    used: set[str] = set()
    for i in inputs:
        key = rule.input_key(i.name)
        partner = by_key.get(key) if key is not None else None
        if key is None or not partner:
            result.unmatched_inputs.append(_rel(i, input_folder))
            continue
        used.add(key)
        result.pairs.append((i, partner[0]))
    if rule.one_to_one:
        result.unmatched_targets = [
            _rel(t, target_folder) for t in targets if rule.target_key(t.name) not in used
        ]
    return result


# --------------------------------------------------------------------------- datasets
def _to_tensor(path: Path) -> torch.Tensor:
    """Read ``path`` as a CHW float32 RGB tensor in [0, 1]."""
    array = read_image(path)
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1), dtype=np.float32))


def _require_folder(folder: Path, role: str) -> None:
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "missing folder"
        raise DatasetLayoutError(f"{folder}: {what} ({role})")


class PairedFolderDataset(Dataset):
    """Degraded inputs in ``root/input_dir`` paired with ground truth in ``root/target_dir``.

    Args:
        root: folder holding the two sub-folders.
        input_dir, target_dir: sub-folder names (``input``/``target``; ``images``/``labels`` for
            UDAIR; ``rainy``/``gt`` for RainTrainL, …).
        task: task name copied into every item (e.g. ``"rain"``), or None.
        pairing: a rule name from :data:`PAIRING_RULES` or a :class:`PairingRule`.
        transform: optional ``f(input, target) -> (input, target)`` applied to the tensors
            (crop/flip them identically here).
        recursive: also look in sub-folders (RESIDE OTS ``part1..part4``).

    Items are ``dict(input=Tensor, target=Tensor, name=str, task=str)``; ``name`` is the input
    path relative to ``input_dir``; ``task`` is ``""`` when none was given (``None`` would break
    the default DataLoader collate). Raises :class:`DatasetLayoutError` when a folder is
    missing or empty, or when any file lacks a partner.
    """

    def __init__(
        self,
        root: str | Path,
        input_dir: str = "input",
        target_dir: str = "target",
        task: str | None = None,
        pairing: str | PairingRule = "name",
        transform: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
        | None = None,
        *,
        recursive: bool = False,
    ) -> None:
        self.root = Path(root)
        self.input_folder = self.root / input_dir
        self.target_folder = self.root / target_dir
        self.task = task
        self.rule = get_pairing_rule(pairing)
        self.transform = transform
        _require_folder(self.input_folder, "inputs")
        _require_folder(self.target_folder, "targets")
        inputs = list_images(self.input_folder, recursive=recursive)
        targets = list_images(self.target_folder, recursive=recursive)
        if not inputs:
            raise DatasetLayoutError(f"{self.input_folder}: no images")
        if not targets:
            raise DatasetLayoutError(f"{self.target_folder}: no images")
        match = match_pairs(
            self.input_folder, self.target_folder, self.rule, inputs=inputs, targets=targets
        )
        if match.unmatched_inputs:
            raise DatasetLayoutError(
                f"{self.root}: {len(match.unmatched_inputs)} of {len(inputs)} images in "
                f"{input_dir}/ have no partner in {target_dir}/ under pairing rule "
                f"'{self.rule.name}' "
                f"({format_names(match.unmatched_inputs)})"
            )
        if match.unmatched_targets:
            raise DatasetLayoutError(
                f"{self.root}: {len(match.unmatched_targets)} of {len(targets)} images in "
                f"{target_dir}/ have no partner in {input_dir}/ under pairing rule "
                f"'{self.rule.name}' "
                f"({format_names(match.unmatched_targets)})"
            )
        if match.ambiguous_targets:
            group = match.ambiguous_targets[0]
            raise DatasetLayoutError(
                f"{self.target_folder}: {len(group)} images share one pairing key under rule "
                f"'{self.rule.name}' ({format_names(group)})"
            )
        #: ``(input_path, target_path)`` in sorted input order.
        self.pairs: list[tuple[Path, Path]] = match.pairs

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, object]:
        input_path, target_path = self.pairs[index]
        x, y = _to_tensor(input_path), _to_tensor(target_path)
        if x.shape != y.shape:
            raise DatasetLayoutError(
                f"{input_path}: size {x.shape[2]}x{x.shape[1]} differs from its target "
                f"{target_path.name} ({y.shape[2]}x{y.shape[1]})"
            )
        if self.transform is not None:
            x, y = self.transform(x, y)
        return {
            "input": x,
            "target": y,
            "name": _rel(input_path, self.input_folder),
            "task": self.task or "",
        }

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({str(self.root)!r}, {len(self)} pairs, "
            f"rule={self.rule.name!r}, task={self.task!r})"
        )


class UnpairedFolderDataset(Dataset):
    """A folder of images without partners: a real-world target domain with no ground truth, or
    clean images that are degraded on the fly.

    Items are ``dict(input=Tensor, name=str)`` with ``name`` relative to ``root``. Raises
    :class:`DatasetLayoutError` when the folder is missing or holds no images.
    """

    def __init__(
        self,
        root: str | Path,
        recursive: bool = False,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.root = Path(root)
        self.transform = transform
        _require_folder(self.root, "images")
        #: image paths, sorted.
        self.paths: list[Path] = list_images(self.root, recursive=recursive)
        if not self.paths:
            raise DatasetLayoutError(f"{self.root}: no images")

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, object]:
        path = self.paths[index]
        x = _to_tensor(path)
        if self.transform is not None:
            x = self.transform(x)
        return {"input": x, "name": _rel(path, self.root)}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.root)!r}, {len(self)} images)"
