"""The demo behind ``make demo`` / ``aioir demo``: the shipped sample photos, degraded and restored.

:func:`run_demo` takes the bundled sample photos (:mod:`aioir.data.samples`), down-sizes each
(Lanczos, antialiased) so its long side is ``size`` pixels, degrades it with every task's
degradations (:class:`~aioir.data.synthetic.SyntheticDegradationDataset`, deterministic: seeded
per task and photo name), restores every degraded image with the model and — when ``tta`` is on
and the model supports it — once more with its test-time adaptation (UDAIR's blind default mode,
as ``aioir restore --tta`` runs it). It scores everything against the clean photo under the
``clean`` metric protocol and writes, under ``output/``::

    clean/<photo>.png  degraded/<task>/<photo>.png  restored/<task>/<photo>.png
    restored_tta/<task>/<photo>.png  grid.png  index.html  metrics.json  metrics.csv

Every image is 8-bit; the metrics are computed on exactly the 8-bit images written, and the
model restores exactly the degraded PNG written, so ``aioir restore degraded/<task>/<photo>.png``
reproduces a ``restored`` file. Everything is first written (atomically, file by file) into a
hidden staging folder beside ``output`` and moved into place at the end, so an interrupted or
failed run leaves ``output`` as it was.
"""

from __future__ import annotations

import csv
import dataclasses
import html
import io
import json
import math
import os
import secrets
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from aioir.errors import ConfigError, ImageWriteError

__all__ = [
    "COLUMNS",
    "DEFAULT_OUTPUT",
    "DEFAULT_SIZE",
    "DEFAULT_TASKS",
    "OUTPUT_ENTRIES",
    "PROTOCOL",
    "DemoImage",
    "DemoResult",
    "Score",
    "run_demo",
]

#: The six restoration tasks the demo shows, in aioir's canonical order.
DEFAULT_TASKS: tuple[str, ...] = ("noise", "rain", "haze", "lowlight", "blur", "underwater")
#: Long side of the demo images: the whole demo, with TTA, takes ~2 minutes on 2 CPU cores.
DEFAULT_SIZE = 384
#: Where ``aioir demo`` writes by default (relative to the working directory).
DEFAULT_OUTPUT = Path("outputs/demo")
#: The metric protocol of every number the demo reports (:mod:`aioir.metrics.protocols`).
PROTOCOL = "clean"
#: The scored image columns: the degraded input, the plain restoration and the TTA restoration.
COLUMNS: tuple[str, ...] = ("degraded", "restored", "restored_tta")
#: What the demo writes directly under ``output`` (and replaces there with ``overwrite``).
OUTPUT_ENTRIES: tuple[str, ...] = (
    "clean", "degraded", "restored", "restored_tta",
    "grid.png", "index.html", "metrics.json", "metrics.csv",
)  # fmt: skip
MIN_SIZE = 32  # the short side of every sample photo stays above the 11×11 SSIM window

_LABELS = {"degraded": "degraded", "restored": "restored", "restored_tta": "restored + TTA"}
_GRID_BOX = (160, 320)  # the grid's cell width: the image size, kept within these bounds


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
        return getattr(self, column)  # type: ignore[no-any-return]


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
        heads = ["task", *(f"{_LABELS[c]} PSNR / SSIM" for c in self.columns)]
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


# ------------------------------------------------------------------------------ checks
def _check_arguments(
    output: Path, size: int, tasks: Sequence[str], severity: str | float, seed: int,
    overwrite: bool, photos: Sequence[Path],
) -> None:  # fmt: skip
    """Every argument error, before a model is loaded or anything is written."""
    from aioir.data.synthetic import SyntheticDegradationDataset
    from aioir.degradations import TASKS

    if isinstance(size, bool) or not isinstance(size, int) or size < MIN_SIZE:
        raise ConfigError(f"size must be an integer >= {MIN_SIZE}, not {size!r}")
    if not tasks:
        raise ConfigError("tasks: need at least one task")
    for task in tasks:
        if task not in TASKS:
            raise ConfigError(f"unknown task {task!r} (known: {', '.join(TASKS)})")
    if len(set(tasks)) != len(tasks):
        raise ConfigError(f"tasks: a task is given twice ({', '.join(tasks)})")
    if not photos:
        raise ConfigError("no sample photos found (is the aioir installation complete?)")
    # the dataset checks the severity (tiers, floats, ranges) exactly as it will use it
    SyntheticDegradationDataset(list(photos), list(tasks), patch_size=None, severity=severity,
                                seed=seed, deterministic=True)  # fmt: skip
    if output.exists() or output.is_symlink():
        if not output.is_dir():
            raise ConfigError(f"{output}: exists and is not a folder")
        if not overwrite and any(output.iterdir()):
            raise ConfigError(f"{output}: folder exists; pass --overwrite to replace it")


def _model_label(spec: str | os.PathLike[str] | nn.Module, model: nn.Module) -> str:
    from aioir.restore.adaptation import model_architecture

    if isinstance(spec, nn.Module):
        config = getattr(model, "aioir_config", None) or {}
        preset = config.get("preset") if isinstance(config, dict) else None
        arch = model_architecture(model)
        return f"{arch}-{preset}" if preset else arch
    label = os.fspath(spec)
    training = (getattr(model, "aioir_metadata", None) or {}).get("training") or {}
    description = training.get("description") if isinstance(training, dict) else None
    return f"{label}: {description}" if description else label


# ------------------------------------------------------------------------------ images
def _downsize(path: Path, size: int) -> np.ndarray:
    """The photo as uint8 H×W×3 with its long side ``size`` (never up-scaled; Lanczos)."""
    from aioir.io import read_image, to_uint8

    pixels = to_uint8(read_image(path))
    if max(pixels.shape[:2]) <= size:
        return pixels
    return np.asarray(_fit(pixels, size), dtype=np.uint8).copy()


def _float(pixels: np.ndarray) -> np.ndarray:
    return pixels.astype(np.float32) / np.float32(255.0)


def _font(size: int) -> Any:
    """DejaVu Sans (shipped with matplotlib; has ×, σ) at ``size`` px, else Pillow's default."""
    from PIL import ImageFont

    try:
        import matplotlib

        path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
        return ImageFont.truetype(str(path), size)
    except (ImportError, OSError):
        return ImageFont.load_default(size=size)


def _fit(pixels: np.ndarray, box: int) -> Any:
    """A PIL image of ``pixels`` scaled to fit in box × box."""
    from PIL import Image

    h, w = pixels.shape[:2]
    scale = box / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return Image.fromarray(pixels).resize(size, Image.Resampling.LANCZOS)


def _grid(
    rows: list[tuple[str, list[tuple[str, np.ndarray, list[str]]]]],
    size: int,
    corner: str = "",
    footer: Sequence[str] = (),
) -> np.ndarray:
    """One row per task: a label, then (header, image, caption lines) cells; ``corner`` above
    the labels, ``footer`` lines below the grid; uint8 H×W×3."""
    from PIL import Image, ImageDraw

    box = min(max(size, _GRID_BOX[0]), _GRID_BOX[1])
    pad = 10
    title_font, text_font = _font(18), _font(14)
    label_w = max(120, *(math.ceil(title_font.getlength(label)) + 3 * pad for label, _ in rows))
    line_h = 18
    headers = [cell[0] for cell in rows[0][1]]
    n_cols = len(headers)
    n_lines = max(len(cell[2]) for _, cells in rows for cell in cells)
    fitted = [[_fit(cell[1], box) for cell in cells] for _, cells in rows]
    heights = [max(im.height for im in ims) + 6 + n_lines * line_h for ims in fitted]
    header_h = 30
    width = label_w + n_cols * (box + pad) + pad
    width = max([width, *(2 * pad + math.ceil(text_font.getlength(t)) for t in footer)])
    height = header_h + sum(h + pad for h in heights) + pad + len(footer) * line_h
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    ink, grey = (20, 20, 20), (90, 90, 90)
    for c, text in enumerate(headers):
        x = label_w + c * (box + pad) + box // 2
        draw.text((x, header_h // 2), text, fill=ink, font=title_font, anchor="mm")
    draw.text((pad, header_h // 2), corner, fill=grey, font=text_font, anchor="lm")
    y = header_h
    for (label, cells), ims, row_h in zip(rows, fitted, heights):
        image_h = max(im.height for im in ims)
        draw.text((pad, y + image_h // 2), label, fill=ink, font=title_font, anchor="lm")
        for c, (cell, im) in enumerate(zip(cells, ims)):
            x0 = label_w + c * (box + pad)
            canvas.paste(im, (x0 + (box - im.width) // 2, y + (image_h - im.height) // 2))
            for k, text in enumerate(cell[2]):
                ty = y + image_h + 4 + k * line_h
                draw.text((x0 + box // 2, ty), text, fill=grey, font=text_font, anchor="mt")
        y += row_h + pad
    for k, text in enumerate(footer):
        draw.text((pad, y + k * line_h), text, fill=grey, font=text_font, anchor="lt")
    return np.asarray(canvas, dtype=np.uint8)


# ------------------------------------------------------------------------------ files
def _metrics_csv(result: DemoResult) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    head = ["task", "photo"]
    for c in COLUMNS:
        head += [f"{c}_psnr", f"{c}_ssim"]
    writer.writerow([*head, "tta_reference"])
    for im in result.images:
        row: list[str] = [im.task, im.photo]
        for c in COLUMNS:
            s = im.score(c)
            row += ["", ""] if s is None else [f"{s.psnr:.4f}", f"{s.ssim:.5f}"]
        writer.writerow([*row, im.tta_reference or ""])
    return buffer.getvalue()


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1500px;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}
td:first-child,th:first-child{text-align:left}
.images td{text-align:center;vertical-align:top;border:none}
.images img{max-width:320px;height:auto}
figure{margin:0}figcaption{font-size:.85em;color:#555}
.note{color:#555;font-size:.9em}
"""


def _index_html(result: DemoResult, sources: list[dict[str, str]]) -> str:
    e = html.escape
    summary = result.summary()
    cols = result.columns
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>aioir demo</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>aioir demo</h1>",
        f"<p>Model: <b>{e(result.model)}</b>. The {len(result.photos)} bundled sample photos, "
        f"long side {result.size} px, degraded synthetically (severity {e(str(result.severity))}, "
        f"seed {result.seed}, seeded per task and photo) and restored; "
        f"{'with and without' if result.tta else 'without'} test-time adaptation (TTA).</p>",
        '<p><img src="grid.png" alt="comparison grid" style="max-width:100%"></p>',
        f"<h2>PSNR / SSIM against the clean photo</h2><p class=note>{e(result.protocol)}</p>",
        "<table><tr><th>task</th>" + "".join(f"<th>{e(_LABELS[c])}</th>" for c in cols) + "</tr>",
    ]
    for name, row in summary.items():
        cells = "".join(f"<td>{e(row[c].text())}</td>" for c in cols)
        label = f"<b>{e(name)}</b>" if name == "mean" else e(name)
        parts.append(f"<tr><td>{label}</td>{cells}</tr>")
    parts.append("</table>")
    for note in result.notes():
        parts.append(f"<p class=note>{e(note)}</p>")
    parts.append(
        '<p class=note>Per-image numbers: <a href="metrics.json">metrics.json</a>, '
        '<a href="metrics.csv">metrics.csv</a>.</p>'
    )
    shown = [*cols, "clean"]
    for task in result.tasks:
        parts.append(f'<h2 id="{e(task)}">{e(task)}</h2><table class="images">')
        parts.append("<tr>" + "".join(f"<th>{e(_LABELS.get(c, c))}</th>" for c in shown) + "</tr>")
        for im in (im for im in result.images if im.task == task):
            cells = []
            for c in shown:
                src = im.files[c]
                if c == "clean":
                    caption = e(im.photo)
                else:
                    score = im.score(c)
                    caption = f"{score.psnr:.2f} dB / {score.ssim:.3f}" if score else ""
                    if c == "restored_tta" and im.tta_reference:
                        caption += f"<br>source cluster: {e(im.tta_reference)}"
                cells.append(
                    f'<td><figure><a href="{e(src)}"><img src="{e(src)}" alt="{e(c)} '
                    f'{e(im.photo)}" loading="lazy"></a><figcaption>{caption}</figcaption>'
                    "</figure></td>"
                )
            parts.append("<tr>" + "".join(cells) + "</tr>")
        parts.append("</table>")
    parts.append("<h2>Photos</h2><table><tr><th>photo</th><th>author</th><th>licence</th>"
                 "<th>source</th></tr>")  # fmt: skip
    by_stem = {Path(row.get("file", "")).stem: row for row in sources}
    for photo in result.photos:
        row = by_stem.get(photo, {})
        parts.append(
            f"<tr><td>{e(photo)}</td><td>{e(row.get('author', '?'))}</td>"
            f"<td>{e(row.get('license', '?'))}</td>"
            f"<td>{e(row.get('package', '?'))}: {e(row.get('path_in_package', '?'))}</td></tr>"
        )
    parts.append(
        "</table><p class=note>Modifications: down-scaled (see SOURCES.tsv in aioir's "
        f"assets/samples), then to {result.size} px on the long side, synthetically degraded and "
        "restored by aioir. The derived images carry the licence of their photo.</p>"
    )
    seconds = result.seconds
    if seconds:
        parts.append(
            "<p class=note>Wall time: "
            + ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items())
            + ".</p>"
        )
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _stage_dir(target: Path) -> Path:
    name = target.name or "demo"
    staging = target.parent / f".{name}.partial-{secrets.token_hex(4)}"
    try:
        staging.mkdir(parents=True)
    except OSError as exc:
        raise ImageWriteError(f"{target}: cannot create folder ({exc.strerror or exc})") from None
    return staging


def _publish(staging: Path, target: Path, display: Path) -> None:
    """Move the staged entries into ``target``; the demo entries already there (all of
    :data:`OUTPUT_ENTRIES`, also those this run did not write) are replaced, nothing else."""
    if not target.exists():
        try:
            staging.rename(target)
        except OSError as exc:
            raise ImageWriteError(
                f"{display}: cannot create folder ({exc.strerror or exc})"
            ) from None
        return
    trash = target.parent / f".{target.name or 'demo'}.old-{secrets.token_hex(4)}"
    try:
        trash.mkdir()
        for name in OUTPUT_ENTRIES:
            old = target / name
            if old.exists() or old.is_symlink():
                old.rename(trash / name)
        for entry in sorted(staging.iterdir()):
            entry.rename(target / entry.name)
    except OSError as exc:  # rare (same folder renames); keep the old files for the user
        raise ImageWriteError(
            f"{display}: cannot move the demo's files in place ({exc.strerror or exc}); "
            f"the previous ones are in {trash}"
        ) from None
    shutil.rmtree(trash, ignore_errors=True)
    staging.rmdir()


# ------------------------------------------------------------------------------ the demo
def run_demo(
    output: str | os.PathLike[str] = DEFAULT_OUTPUT,
    *,
    model: str | os.PathLike[str] | nn.Module = "default",
    size: int = DEFAULT_SIZE,
    tasks: Sequence[str] = DEFAULT_TASKS,
    tta: bool = True,
    severity: str | float = "moderate",
    seed: int = 0,
    overwrite: bool = False,
    device: str = "auto",
    progress: bool = True,
) -> DemoResult:
    """Degrade the bundled sample photos, restore them, score them, write the comparison page.

    Args:
        output: folder to write (see the module docstring for its content). An existing folder
            that is not empty is refused unless ``overwrite``; then only the demo's own entries
            (:data:`OUTPUT_ENTRIES`) in it are replaced, anything else is left alone.
        model: ``"default"`` (the shipped model), a registered name with weights, a saved-model
            path or an ``nn.Module``.
        size: long side of the demo images in pixels (>= 32; photos are never up-scaled).
        tasks: degradation tasks (names in :data:`aioir.degradations.TASKS`).
        tta: also restore with the model's test-time adaptation; a model without it gets a
            note (:attr:`DemoResult.tta_note`) instead of the column.
        severity: severity tier (``mild``, ``moderate``, ``severe``), ``random`` or a float in
            [0, 1].
        seed: base seed of the degradations.
        overwrite: replace the demo's files in an existing folder.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        progress: show a progress bar on stderr.

    Raises:
        ConfigError: a bad argument, model or device, or an existing folder without
            ``overwrite`` (all checked before any work).
        ImageWriteError: the output cannot be written.
    """
    from tqdm import tqdm

    from aioir.data.samples import sample_images, sample_sources
    from aioir.data.synthetic import SyntheticDegradationDataset
    from aioir.io import to_uint8, write_bytes_atomically, write_image
    from aioir.metrics import get_protocol
    from aioir.restore.api import Restorer, resolve_device
    from aioir.restore.resolve import resolve_model

    start = time.perf_counter()
    display = Path(output)
    target = display.expanduser().absolute()
    tasks = tuple(tasks)
    photos_in = sample_images()
    _check_arguments(target, size, tasks, severity, seed, overwrite, photos_in)
    resolve_device(device)
    protocol = get_protocol(PROTOCOL)
    module = resolve_model(model)
    plain = Restorer(module, device=device, tile=0)
    adapted: Restorer | None = None
    tta_note: str | None = None
    if tta:
        try:
            adapted = Restorer(module, device=device, tile=0, tta=True)
        except ConfigError as exc:
            tta_note = str(exc)
    else:
        tta_note = "not asked for (--no-tta)"
    label = _model_label(model, module)
    seconds = {"restore": 0.0, "tta": 0.0} if adapted is not None else {"restore": 0.0}

    staging = _stage_dir(target)
    written: list[str] = []
    try:

        def write(rel: str, pixels: np.ndarray) -> None:
            write_image(staging / rel, pixels)
            written.append(rel)

        clean: dict[str, np.ndarray] = {}
        for path in photos_in:
            clean[path.stem] = _downsize(path, size)
            write(f"clean/{path.stem}.png", clean[path.stem])
        photos = tuple(clean)
        data = SyntheticDegradationDataset(
            [staging / "clean" / f"{p}.png" for p in photos], list(tasks), patch_size=None,
            severity=severity, seed=seed, deterministic=True,
        )  # fmt: skip
        images: list[DemoImage] = []
        shown: dict[str, dict[str, np.ndarray]] = {}
        grid_photos = {t: photos[i % len(photos)] for i, t in enumerate(tasks)}
        bar = tqdm(total=len(data), desc="demo", unit="img", file=sys.stderr,
                   disable=not progress, dynamic_ncols=True, leave=False)  # fmt: skip
        try:
            for index in range(len(data)):
                item = data[index]
                task, photo = item["task"], Path(item["name"]).stem
                bar.set_postfix_str(f"{task}/{photo}")
                target_u8 = clean[photo]
                reference = _float(target_u8)
                degraded_u8 = to_uint8(item["input"].permute(1, 2, 0).numpy())
                files = {"clean": f"clean/{photo}.png"}
                outputs = {"degraded": degraded_u8}
                t0 = time.perf_counter()
                outputs["restored"] = to_uint8(plain(_float(degraded_u8)))
                seconds["restore"] += time.perf_counter() - t0
                reference_task = None
                if adapted is not None:
                    t0 = time.perf_counter()
                    outputs["restored_tta"] = to_uint8(adapted(_float(degraded_u8)))
                    seconds["tta"] += time.perf_counter() - t0
                    reference_task = _reported_reference(adapted)
                scores: dict[str, Score] = {}
                for column, pixels in outputs.items():
                    files[column] = f"{column}/{task}/{photo}.png"
                    write(files[column], pixels)
                    s = protocol.score(_float(pixels), reference)
                    scores[column] = Score(float(s["psnr"]), float(s["ssim"]))
                images.append(
                    DemoImage(
                        task,
                        photo,
                        files,
                        scores["degraded"],
                        scores["restored"],
                        scores.get("restored_tta"),
                        reference_task,
                    )
                )
                if grid_photos[task] == photo:
                    shown[task] = {**outputs, "clean": target_u8}
                bar.update(1)
        finally:
            bar.close()

        result = DemoResult(
            output=display, model=label, protocol=protocol.header(), tasks=tasks,
            photos=photos, size=size, severity=severity, seed=seed, images=images,
            grid_photos=grid_photos, tta=adapted is not None, tta_note=tta_note,
        )  # fmt: skip
        rows = []
        for task in tasks:
            im = next(i for i in images if i.task == task and i.photo == grid_photos[task])
            cells = []
            for column in (*result.columns, "clean"):
                score = im.score(column) if column != "clean" else None
                lines = [f"{score.psnr:.2f} dB / {score.ssim:.3f}"] if score else [im.photo]
                cells.append((_LABELS.get(column, column), shown[task][column], lines))
            rows.append((task, cells))
        footer = [result.protocol, f"model {label}; severity {severity}, seed {seed}"]
        if tta_note is not None and adapted is None:
            footer.append(f"restored + TTA skipped: {tta_note}")
        write("grid.png", _grid(rows, size, corner="PSNR dB / SSIM", footer=footer))
        seconds["total"] = time.perf_counter() - start
        result.seconds = seconds
        texts = {
            "metrics.json": json.dumps(result.to_json(), indent=1, allow_nan=False) + "\n",
            "metrics.csv": _metrics_csv(result),
            "index.html": _index_html(result, sample_sources()),
        }
        for name, text in texts.items():
            write_bytes_atomically(staging / name, text.encode("utf-8"))
            written.append(name)
        _publish(staging, target, display)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    result.files = [display / rel for rel in written]
    return result


def _reported_reference(restorer: Any) -> str | None:
    """The source cluster the adapter reports having used for the last image, if any."""
    reports = getattr(restorer.adapter, "reports", None)
    if not reports or not isinstance(reports[-1], dict):
        return None
    task = reports[-1].get("task")
    return str(task) if task is not None else None
