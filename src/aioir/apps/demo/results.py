"""What the demo measured: per-image scores, the per-task summary, the table and metrics.json."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["COLUMNS", "LABELS", "PROTOCOL", "DemoImage", "DemoResult", "Score"]

#: The metric protocol of every number the demo reports (:mod:`aioir.metrics.protocols`).
PROTOCOL = "clean"
#: The scored image columns: the degraded input, the plain restoration and the TTA restoration.
COLUMNS: tuple[str, ...] = ("degraded", "restored", "restored_tta")
#: How the table, the grid and the page title each column.
LABELS = {"degraded": "degraded", "restored": "restored", "restored_tta": "restored + TTA"}


@dataclasses.dataclass(frozen=True)
class Score:
    """PSNR (dB) and SSIM of one image against its clean photo."""

    psnr: float
    ssim: float

    def as_dict(self) -> dict[str, float]:
        """``{"psnr": …, "ssim": …}``."""
        return {"psnr": self.psnr, "ssim": self.ssim}

    def text(self) -> str:
        """``"27.02 / 0.801"``."""
        return f"{self.psnr:.2f} / {self.ssim:.3f}"


@dataclasses.dataclass(frozen=True)
class DemoImage:
    """One (task, photo) of the demo: its files (relative to the output folder) and scores.

    ``restored_tta`` is ``None`` when the TTA column was skipped; ``tta_reference`` is the source
    cluster the blind adaptation chose (``None`` when the adapter does not report one).
    """

    task: str
    photo: str
    files: dict[str, str]
    degraded: Score
    restored: Score
    restored_tta: Score | None = None
    tta_reference: str | None = None

    def score(self, column: str) -> Score | None:
        """The score of ``column`` (one of :data:`COLUMNS`)."""
        score: Score | None = getattr(self, column)
        return score


@dataclasses.dataclass
class DemoResult:
    """What :func:`run_demo` did: per-image scores, the files written, the settings and times."""

    output: Path
    model: str
    protocol: str
    tasks: tuple[str, ...]
    photos: tuple[str, ...]
    size: int
    severity: str | float
    seed: int
    images: list[DemoImage]
    grid_photos: dict[str, str]
    files: list[Path] = dataclasses.field(default_factory=list)
    tta: bool = False
    tta_note: str | None = None
    seconds: dict[str, float] = dataclasses.field(default_factory=dict)

    @property
    def columns(self) -> tuple[str, ...]:
        """The scored columns present (``restored_tta`` only when TTA ran)."""
        return COLUMNS if self.tta else COLUMNS[:2]

    def summary(self) -> dict[str, dict[str, Score]]:
        """``{task: {column: mean Score}}`` plus ``"mean"`` (the mean of the task means)."""
        out: dict[str, dict[str, Score]] = {}
        for task in self.tasks:
            rows = [im for im in self.images if im.task == task]
            out[task] = {c: _mean([r.score(c) for r in rows]) for c in self.columns}
        out["mean"] = {c: _mean([out[t][c] for t in self.tasks]) for c in self.columns}
        return out

    def table(self) -> str:
        """The PSNR/SSIM table (markdown) under its protocol line, with any notes below it."""
        summary = self.summary()
        heads = ["task", *(f"{LABELS[c]} PSNR / SSIM" for c in self.columns)]
        rows = [[name, *(summary[name][c].text() for c in self.columns)] for name in summary]
        widths = [max(len(r[i]) for r in [heads, *rows]) for i in range(len(heads))]

        def line(cells: Sequence[str]) -> str:
            return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"

        lines = [self.protocol, line(heads), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
        lines += [line(r) for r in rows]
        lines.append(
            f"{len(self.photos)} photos per task, long side {self.size} px, severity "
            f"{self.severity}, seed {self.seed}; model {self.model}"
        )
        lines.extend(self.notes())
        return "\n".join(lines)

    def notes(self) -> list[str]:
        """One-line remarks: a skipped TTA column, how often blind TTA chose the true task."""
        if not self.tta:
            return [f"restored + TTA skipped: {self.tta_note}"] if self.tta_note else []
        chosen = [im for im in self.images if im.tta_reference is not None]
        if not chosen:
            return []
        hits = sum(im.tta_reference == im.task for im in chosen)
        return [
            f"blind TTA chose the true task's source cluster for {hits} of {len(chosen)} images"
        ]

    def to_json(self) -> dict[str, Any]:
        """Everything as JSON-ready data (what ``metrics.json`` holds)."""
        summary = self.summary()
        return {
            "aioir_demo": 1,
            "model": self.model,
            "protocol": {"name": PROTOCOL, "header": self.protocol},
            "size": self.size,
            "severity": self.severity,
            "seed": self.seed,
            "tasks": list(self.tasks),
            "photos": list(self.photos),
            "tta": self.tta,
            "tta_note": self.tta_note,
            "seconds": {k: round(v, 2) for k, v in self.seconds.items()},
            "grid": {"file": "grid.png", "photos": self.grid_photos},
            "summary": {
                name: {c: s.as_dict() for c, s in cols.items()} for name, cols in summary.items()
            },
            "images": [
                {
                    "task": im.task,
                    "photo": im.photo,
                    "files": im.files,
                    **{c: _score_dict(im.score(c)) for c in COLUMNS},
                    "tta_reference": im.tta_reference,
                }
                for im in self.images
            ],
        }


def _score_dict(score: Score | None) -> dict[str, float] | None:
    return None if score is None else score.as_dict()


def _mean(scores: Sequence[Score | None]) -> Score:
    valid = [s for s in scores if s is not None]
    if not valid:
        return Score(math.nan, math.nan)
    return Score(float(np.mean([s.psnr for s in valid])), float(np.mean([s.ssim for s in valid])))
