"""The demo's pictures and pages: the comparison grid (grid.png), index.html and metrics.csv."""

from __future__ import annotations

import csv
import html
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from aioir.apps.demo.results import COLUMNS, LABELS, DemoResult

__all__ = ["fit", "grid", "index_html", "metrics_csv"]

_GRID_BOX = (160, 320)  # the grid's cell width: the image size, kept within these bounds


def _font(size: int) -> Any:
    """DejaVu Sans (shipped with matplotlib; has ×, σ) at ``size`` px, else Pillow's default."""
    from PIL import ImageFont

    try:
        import matplotlib

        path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
        return ImageFont.truetype(str(path), size)
    except (ImportError, OSError):
        return ImageFont.load_default(size=size)


def fit(pixels: np.ndarray, box: int) -> Any:
    """A PIL image of ``pixels`` scaled to fit in box × box."""
    from PIL import Image

    h, w = pixels.shape[:2]
    scale = box / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return Image.fromarray(pixels).resize(size, Image.Resampling.LANCZOS)


def grid(
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
    fitted = [[fit(cell[1], box) for cell in cells] for _, cells in rows]
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


def metrics_csv(result: DemoResult) -> str:
    """metrics.csv: one row per image, PSNR and SSIM of every column (empty where skipped)."""
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


def index_html(result: DemoResult, sources: list[dict[str, str]]) -> str:
    """index.html: the grid, the summary table, every image with its scores, the photo credits."""
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
        "<table><tr><th>task</th>" + "".join(f"<th>{e(LABELS[c])}</th>" for c in cols) + "</tr>",
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
        parts.append("<tr>" + "".join(f"<th>{e(LABELS.get(c, c))}</th>" for c in shown) + "</tr>")
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
