"""Evaluation results and how they are written: markdown tables, JSON, CSV.

Every table starts with the metric protocol's header line (:meth:`MetricProtocol.header`) and the
benchmark's notes on how the inputs were made, so no number travels without its convention.
Two averages are reported, as Perceive-IR does: the mean over the benchmark's columns (what the
papers' "Avg" column is) and the image-weighted mean over all cases. The degraded input's own
scores (``input_psnr``, ``input_ssim``, ``input_niqe``: the input scored like the output) stand
beside the method's, so a table shows what the method gained; an input identical to its
reference (the ``clean`` task) has PSNR ∞.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import statistics
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from aioir.io import write_bytes_atomically

__all__ = [
    "BenchmarkResult",
    "ColumnSummary",
    "ImageResult",
    "comparison_markdown",
    "format_mean_sd",
    "mean_sd",
    "results_to_json",
    "to_markdown",
    "write_csv",
    "write_json",
]

_METRICS = ("psnr", "ssim", "niqe")
#: the degraded input's scores (the same metrics, on the input instead of the output)
_INPUT = {m: f"input_{m}" for m in _METRICS}
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
    input_psnr: float | None = None
    input_ssim: float | None = None
    input_niqe: float | None = None


def _difference(output: float | None, degraded: float | None) -> float | None:
    """``output − degraded`` when both are finite, else ``None``."""
    if output is None or degraded is None or not math.isfinite(output - degraded):
        return None
    return output - degraded


def _mean(values: Iterable[float | None]) -> float | None:
    """Mean of the finite values; ∞ when every value is +∞ (outputs equal to their
    references), ``None`` when there is none."""
    given = [v for v in values if v is not None]
    vals = [v for v in given if math.isfinite(v)]
    if not vals:
        return math.inf if given and all(v == math.inf for v in given) else None
    return sum(vals) / len(vals)


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
    input_psnr: float | None = None
    input_ssim: float | None = None
    input_niqe: float | None = None
    #: mean PSNR gain over the degraded input of the images where both are finite
    psnr_gain: float | None = None

    @classmethod
    def from_images(
        cls, key: str, title: str, task: str, images: Sequence[ImageResult], expected: int | None
    ) -> ColumnSummary:
        """Means over the column's images; notes are the distinct per-image notes."""
        notes = list(dict.fromkeys(r.note for r in images if r.note))
        means = {m: _mean(getattr(r, m) for r in images) for m in (*_METRICS, *_INPUT.values())}
        gain = _mean(_difference(r.psnr, r.input_psnr) for r in images)
        return cls(key, title, task, len(images), expected, notes=notes, psnr_gain=gain, **means)


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
        every image. Each metric averages only the columns/images where it was computed; the
        ``input_*`` keys are the degraded input's averages."""
        keys = (*_METRICS, *_INPUT.values())
        if weighting == "columns":
            rows: Sequence[ColumnSummary | ImageResult] = self.columns
        elif weighting == "images":
            rows = self.images
        else:
            raise ValueError(f"weighting must be 'columns' or 'images', not {weighting!r}")
        return {m: _mean(getattr(r, m) for r in rows) for m in keys}

    def psnr_gain(self, weighting: str = "columns") -> float | None:
        """Mean PSNR gain over the degraded input (dB) of the columns / images where both are
        finite (an input equal to its reference, PSNR ∞, has no gain to show)."""
        if weighting == "columns":
            return _mean(c.psnr_gain for c in self.columns)
        if weighting == "images":
            return _mean(_difference(r.psnr, r.input_psnr) for r in self.images)
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
    if value is None:
        return "–"
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    return f"{value:.{_DIGITS[metric]}f}"


def _metrics_present(results: Sequence[BenchmarkResult]) -> list[str]:
    return [
        m for m in _METRICS if any(getattr(c, m) is not None for r in results for c in r.columns)
    ]


def _inputs_present(results: Sequence[BenchmarkResult], metrics: Sequence[str]) -> list[str]:
    """The metrics (of ``metrics``) for which the degraded input was scored."""
    return [
        m
        for m in metrics
        if any(getattr(c, _INPUT[m]) is not None for r in results for c in r.columns)
    ]


def _gain(gain: float | None) -> str:
    """PSNR gain over the input in dB (signed); ``–`` where there is none."""
    return "–" if gain is None else f"{gain:+.2f}"


def to_markdown(result: BenchmarkResult) -> str:
    """The per-dataset table of one result, with the protocol header and notes above it.

    Where the degraded input was scored, its score stands left of the method's (``Input
    PSNR | PSNR ↑ | Gain``), so the table shows what the method changed.
    """
    metrics = _metrics_present([result])
    inputs = _inputs_present([result], metrics)
    names = {"psnr": "PSNR ↑", "ssim": "SSIM ↑", "niqe": "NIQE ↓"}
    headers: list[str] = []
    for m in metrics:
        if m in inputs:
            headers.append(f"Input {names[m].split()[0]}")
        headers.append(names[m])
        if m == "psnr" and m in inputs:
            headers.append("Gain (dB)")

    def cells(values: dict[str, float | None], gain: float | None) -> str:
        out: list[str] = []
        for m in metrics:
            if m in inputs:
                out.append(_fmt(values[_INPUT[m]], m))
            out.append(_fmt(values[m], m))
            if m == "psnr" and m in inputs:
                out.append(_gain(gain))
        return " | ".join(out)

    lines = [f"### {result.benchmark} — {result.method}", "", result.header]
    lines += result.notes
    lines += [f"WARNING: {w}" for w in result.warnings]
    lines += [
        "",
        "| Dataset | Images | " + " | ".join(headers) + " |",
        "|---|---:|" + "---:|" * len(headers),
    ]
    for c in result.columns:
        count = f"{c.n:,}" if c.expected in (None, c.n) else f"{c.n:,} (expected {c.expected:,})"
        values = {k: getattr(c, k) for k in (*_METRICS, *_INPUT.values())}
        lines.append(f"| {c.title} | {count} | {cells(values, c.psnr_gain)} |")
    for label, weighting, count in (
        (
            "Average over datasets",
            "columns",
            f"{len(result.columns)} set{'s' if len(result.columns) != 1 else ''}",
        ),
        ("Average over images", "images", f"{len(result.images):,}"),
    ):
        avg, gain = result.average(weighting), result.psnr_gain(weighting)
        lines.append(f"| **{label}** | {count} | {cells(avg, gain)} |")
    method_notes = [f"- {c.title}: {'; '.join(c.notes)}" for c in result.columns if c.notes]
    if method_notes:
        lines += ["", f"Method notes ({result.method}):", *method_notes]
    return "\n".join(lines) + "\n"


def comparison_markdown(results: Sequence[BenchmarkResult]) -> str:
    """Paper-style tables: one row per method, PSNR/SSIM per dataset and both averages.

    Results are grouped by (benchmark, protocol); each group gets its own table and header, so
    numbers under different conventions never share a table. The first row is the degraded
    input itself (``degraded input``) where it was scored: every method saw the same inputs.
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
                shown = _fmt(psnr, "psnr")
                return f"{shown}/{ssim:.4f}" if ssim is not None else shown
            return f"NIQE {niqe:.3f}" if (use_niqe and niqe is not None) else "–"

        def row(
            label: str, r: BenchmarkResult, prefix: str = "", titles: list[str] = titles
        ) -> str:
            by_title = {c.title: c for c in r.columns}
            cells = [
                cell(*(getattr(c, prefix + m) for m in _METRICS)) if c is not None else "–"
                for c in (by_title.get(t) for t in titles)
            ]
            for weighting in ("columns", "images"):
                a = r.average(weighting)
                cells.append(cell(a[prefix + "psnr"], a[prefix + "ssim"], None))
            return f"| {label} | " + " | ".join(cells) + " |"

        scored = [r for r in group if _inputs_present([r], _METRICS)]
        if scored:
            lines.append(row("degraded input", scored[0], "input_"))
        lines += [row(r.method, r) for r in group]
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
    "input_psnr",
    "input_ssim",
    "input_niqe",
    "psnr_gain",
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
                **{m: getattr(c, m) for m in (*_METRICS, *_INPUT.values())},
                "psnr_gain": c.psnr_gain,
            }
            for c in r.columns
        ]
        for label, weighting in (("average_columns", "columns"), ("average_images", "images")):
            n = len(r.columns) if weighting == "columns" else len(r.images)
            rows.append(
                {
                    "dataset": label,
                    "title": label,
                    "task": "",
                    "images": n,
                    **r.average(weighting),
                    "psnr_gain": r.psnr_gain(weighting),
                }
            )
        for row in rows:
            writer.writerow({**base, **{k: ("" if v is None else v) for k, v in row.items()}})
    return _atomic_write(Path(path), buf.getvalue())


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation of per-seed scores (sd 0 for one value)."""
    vals = [float(v) for v in values]
    return statistics.fmean(vals), statistics.stdev(vals) if len(vals) > 1 else 0.0


def format_mean_sd(values: Sequence[float], digits: int = 2, *, sd_of_one: bool = True) -> str:
    """``m ± sd`` over per-seed scores; ``–`` when there is none or one is not finite. One
    value gives ``m ± 0.00`` (``sd_of_one=False``: ``m`` alone)."""
    vals = [float(v) for v in values if v is not None]
    if not vals or len(vals) < len(values) or not all(math.isfinite(v) for v in vals):
        return "–"
    m, sd = mean_sd(vals)
    if len(vals) == 1 and not sd_of_one:
        return f"{m:.{digits}f}"
    return f"{m:.{digits}f} ± {sd:.{digits}f}"
