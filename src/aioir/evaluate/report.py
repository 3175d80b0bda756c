"""Evaluation results and how they are written: markdown tables, JSON, CSV.

Every table starts with the metric protocol's header line (:meth:`MetricProtocol.header`) and the
benchmark's notes on how the inputs were made, so no number travels without its convention.
Two averages are reported, as Perceive-IR does: the mean over the benchmark's columns (what the
papers' "Avg" column is) and the image-weighted mean over all cases.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from aioir.io import write_bytes_atomically

__all__ = [
    "BenchmarkResult",
    "ColumnSummary",
    "ImageResult",
    "comparison_markdown",
    "results_to_json",
    "to_markdown",
    "write_csv",
    "write_json",
]

_METRICS = ("psnr", "ssim", "niqe")
_DIGITS = {"psnr": 2, "ssim": 4, "niqe": 3}


@dataclasses.dataclass
class ImageResult:
    """Scores of one case (``None`` where a metric does not apply)."""

    dataset: str
    name: str
    psnr: float | None = None
    ssim: float | None = None
    niqe: float | None = None
    seconds: float = 0.0
    note: str = ""


def _mean(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return sum(vals) / len(vals) if vals else None


@dataclasses.dataclass
class ColumnSummary:
    """Per-dataset means (of per-image values) and what the method noted for it."""

    key: str
    title: str
    task: str
    n: int
    expected: int | None = None
    psnr: float | None = None
    ssim: float | None = None
    niqe: float | None = None
    notes: list[str] = dataclasses.field(default_factory=list)

    @classmethod
    def from_images(
        cls, key: str, title: str, task: str, images: Sequence[ImageResult], expected: int | None
    ) -> ColumnSummary:
        """Means over the column's images; notes are the distinct per-image notes."""
        notes = list(dict.fromkeys(r.note for r in images if r.note))
        return cls(
            key,
            title,
            task,
            len(images),
            expected,
            *(_mean(getattr(r, m) for r in images) for m in _METRICS),
            notes=notes,
        )


@dataclasses.dataclass
class BenchmarkResult:
    """Everything one ``(method, benchmark, protocol)`` evaluation produced."""

    benchmark: str
    method: str
    protocol: str
    header: str
    columns: list[ColumnSummary]
    images: list[ImageResult]
    notes: list[str] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)

    def average(self, weighting: str = "columns") -> dict[str, float | None]:
        """``"columns"``: mean of the column means (the papers' Avg); ``"images"``: mean over
        every image. Each metric averages only the columns/images where it was computed."""
        if weighting == "columns":
            return {m: _mean(getattr(c, m) for c in self.columns) for m in _METRICS}
        if weighting == "images":
            return {m: _mean(getattr(r, m) for r in self.images) for m in _METRICS}
        raise ValueError(f"weighting must be 'columns' or 'images', not {weighting!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict: summary, both averages and every per-image result."""
        return {
            "benchmark": self.benchmark,
            "method": self.method,
            "protocol": {"name": self.protocol, "header": self.header},
            "notes": list(self.notes),
            "warnings": list(self.warnings),
            "settings": dict(self.settings),
            "columns": [dataclasses.asdict(c) for c in self.columns],
            "average_columns": self.average("columns"),
            "average_images": self.average("images"),
            "images": [dataclasses.asdict(r) for r in self.images],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BenchmarkResult:
        """Inverse of :meth:`to_dict` (averages are recomputed)."""
        return cls(
            benchmark=data["benchmark"],
            method=data["method"],
            protocol=data["protocol"]["name"],
            header=data["protocol"]["header"],
            columns=[ColumnSummary(**c) for c in data["columns"]],
            images=[ImageResult(**r) for r in data["images"]],
            notes=list(data.get("notes", [])),
            warnings=list(data.get("warnings", [])),
            settings=dict(data.get("settings", {})),
        )


def _fmt(value: float | None, metric: str) -> str:
    return "–" if value is None else f"{value:.{_DIGITS[metric]}f}"


def _metrics_present(results: Sequence[BenchmarkResult]) -> list[str]:
    return [
        m for m in _METRICS if any(getattr(c, m) is not None for r in results for c in r.columns)
    ]


def to_markdown(result: BenchmarkResult) -> str:
    """The per-dataset table of one result, with the protocol header and notes above it."""
    metrics = _metrics_present([result])
    names = {"psnr": "PSNR ↑", "ssim": "SSIM ↑", "niqe": "NIQE ↓"}
    lines = [f"### {result.benchmark} — {result.method}", "", result.header]
    lines += result.notes
    lines += [f"WARNING: {w}" for w in result.warnings]
    lines += [
        "",
        "| Dataset | Images | " + " | ".join(names[m] for m in metrics) + " |",
        "|---|---:|" + "---:|" * len(metrics),
    ]
    for c in result.columns:
        count = f"{c.n:,}" if c.expected in (None, c.n) else f"{c.n:,} (expected {c.expected:,})"
        cells = " | ".join(_fmt(getattr(c, m), m) for m in metrics)
        lines.append(f"| {c.title} | {count} | {cells} |")
    for label, weighting, count in (
        (
            "Average over datasets",
            "columns",
            f"{len(result.columns)} set{'s' if len(result.columns) != 1 else ''}",
        ),
        ("Average over images", "images", f"{len(result.images):,}"),
    ):
        avg = result.average(weighting)
        cells = " | ".join(_fmt(avg[m], m) for m in metrics)
        lines.append(f"| **{label}** | {count} | {cells} |")
    method_notes = [f"- {c.title}: {'; '.join(c.notes)}" for c in result.columns if c.notes]
    if method_notes:
        lines += ["", f"Method notes ({result.method}):", *method_notes]
    return "\n".join(lines) + "\n"


def comparison_markdown(results: Sequence[BenchmarkResult]) -> str:
    """Paper-style tables: one row per method, PSNR/SSIM per dataset and both averages.

    Results are grouped by (benchmark, protocol); each group gets its own table and header, so
    numbers under different conventions never share a table.
    """
    groups: dict[tuple[str, str], list[BenchmarkResult]] = {}
    for r in results:
        groups.setdefault((r.benchmark, r.protocol), []).append(r)
    out = []
    for (bench, _), group in groups.items():
        titles = list(dict.fromkeys(c.title for r in group for c in r.columns))
        use_niqe = any(c.psnr is None and c.niqe is not None for r in group for c in r.columns)
        lines = [f"### {bench}", "", group[0].header, *group[0].notes, ""]
        lines.append("| Method | " + " | ".join(titles) + " | Avg (datasets) | Avg (images) |")
        lines.append("|---|" + "---:|" * (len(titles) + 2))

        def cell(
            psnr: float | None, ssim: float | None, niqe: float | None, use_niqe: bool = use_niqe
        ) -> str:
            if psnr is not None:
                return f"{psnr:.2f}/{ssim:.4f}" if ssim is not None else f"{psnr:.2f}"
            return f"NIQE {niqe:.3f}" if (use_niqe and niqe is not None) else "–"

        for r in group:
            by_title = {c.title: c for c in r.columns}
            cells = [
                cell(c.psnr, c.ssim, c.niqe) if c is not None else "–"
                for c in (by_title.get(t) for t in titles)
            ]
            for weighting in ("columns", "images"):
                a = r.average(weighting)
                cells.append(cell(a["psnr"], a["ssim"], None))
            lines.append(f"| {r.method} | " + " | ".join(cells) + " |")
        out.append("\n".join(lines) + "\n")
    return "\n".join(out)


def _finite_or_none(value: Any) -> Any:
    """``value`` with every non-finite float replaced by ``None`` (JSON has no ∞ or NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(v) for v in value]
    return value


def results_to_json(results: Sequence[BenchmarkResult], **extra: Any) -> str:
    """All results as one JSON document (``{"results": [...], **extra}``).

    Non-finite numbers — the PSNR of an output identical to its reference is +∞ — are written
    as ``null``, so the document is strict JSON.
    """
    from aioir import __version__

    doc = {"aioir_version": __version__, **extra, "results": [r.to_dict() for r in results]}
    return json.dumps(_finite_or_none(doc), indent=2, ensure_ascii=False, allow_nan=False)


def _atomic_write(path: Path, text: str) -> Path:
    write_bytes_atomically(path, text.encode("utf-8"), overwrite=True)
    return path


def write_json(path: str | os.PathLike[str], results: Sequence[BenchmarkResult]) -> Path:
    """Write :func:`results_to_json` to ``path`` (atomically)."""
    return _atomic_write(Path(path), results_to_json(results) + "\n")


_CSV_FIELDS = (
    "benchmark",
    "method",
    "protocol",
    "dataset",
    "title",
    "task",
    "images",
    "psnr",
    "ssim",
    "niqe",
)


def write_csv(path: str | os.PathLike[str], results: Sequence[BenchmarkResult]) -> Path:
    """Summary rows (one per dataset plus the two averages) for every result, with the
    protocol name on each row."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=_CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for r in results:
        base = {"benchmark": r.benchmark, "method": r.method, "protocol": r.protocol}
        rows = [
            {
                "dataset": c.key,
                "title": c.title,
                "task": c.task,
                "images": c.n,
                **{m: getattr(c, m) for m in _METRICS},
            }
            for c in r.columns
        ]
        for label, weighting in (("average_columns", "columns"), ("average_images", "images")):
            n = len(r.columns) if weighting == "columns" else len(r.images)
            rows.append(
                {"dataset": label, "title": label, "task": "", "images": n, **r.average(weighting)}
            )
        for row in rows:
            writer.writerow({**base, **{k: ("" if v is None else v) for k, v in row.items()}})
    return _atomic_write(Path(path), buf.getvalue())
