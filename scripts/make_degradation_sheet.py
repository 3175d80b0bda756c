"""Render ``docs/degradations.png``: every registered degradation at three severity tiers.

Rows: each registered degradation, a composition (haze → rain → noise) and a degradation-CutMix
example with its label map. Columns: clean, mild, moderate, severe (tier midpoints, fixed seeds).

Usage::

    python scripts/make_degradation_sheet.py [--image PATH] [--out docs/degradations.png] [--cell 192]
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.colors import ListedColormap
from PIL import Image

from aioir.degradations import (
    TASKS,
    TIERS,
    Compose,
    available_degradations,
    degradation_class,
    degradation_cutmix,
    make_generator,
    severity_from_tier,
)
from aioir.degradations.compose import canonical_order

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "src" / "aioir" / "assets" / "samples"
SEED = 7
MAX_BYTES = 1_500_000
PREFERRED = "life.jpg"  # an outdoor scene with depth (forest stream) suits haze and rain


def load_image(path: Path | None, size: int) -> torch.Tensor:
    """A ``1×3×size×size`` float image: ``path``, a shipped sample photo or skimage's astronaut."""
    if path is None:
        photos = sorted(SAMPLES.glob("*.jpg")) if SAMPLES.is_dir() else []
        preferred = [p for p in photos if p.name == PREFERRED]
        path = (preferred or photos or [None])[0]
    if path is not None:
        arr = np.asarray(Image.open(path).convert("RGB"))
    else:
        from skimage import data

        arr = data.astronaut()
    h, w = arr.shape[:2]
    m = min(h, w)
    arr = arr[(h - m) // 2 : (h - m) // 2 + m, (w - m) // 2 : (w - m) // 2 + m]
    t = torch.from_numpy(arr.copy()).permute(2, 0, 1)[None].float() / 255.0
    return F.interpolate(t, size=(size, size), mode="area").clamp(0.0, 1.0)


def to_np(t: torch.Tensor) -> np.ndarray:
    """``1×3×H×W`` tensor → ``H×W×3`` array."""
    return t[0].permute(1, 2, 0).clamp(0.0, 1.0).numpy()


def tier_severity(tier: str) -> float:
    """The midpoint severity of a tier."""
    return severity_from_tier(tier)


def render_row(name: str, image: torch.Tensor) -> list[tuple[np.ndarray, str]]:
    """Clean plus the three tiers of one registered degradation."""
    cls = degradation_class(name)
    cells = [(to_np(image), "clean")]
    for tier in TIERS:
        gen = make_generator(SEED)
        deg = cls.sample(tier_severity(tier), gen)
        cells.append((to_np(deg.apply(image, make_generator(SEED))), tier))
    return cells


def composition_row(image: torch.Tensor) -> list[tuple[np.ndarray, str]]:
    """Clean plus haze → rain → noise at each tier."""
    wanted = [n for n in ("haze", "rain", "gaussian_noise") if n in available_degradations()]
    cells = [(to_np(image), "clean")]
    for tier in TIERS:
        gen = make_generator(SEED + 10)
        degs = [degradation_class(n).sample(tier_severity(tier), gen) for n in wanted]
        comp = Compose(canonical_order(degs))
        cells.append((to_np(comp.apply(image, make_generator(SEED))), tier))
    return cells


def cutmix_row(image: torch.Tensor) -> tuple[list[tuple[np.ndarray, str]], list[str]]:
    """Clean, two CutMix composites (moderate, severe) and the label map of the severe one."""
    abair = [t for t in ("noise", "rain", "haze", "blur", "lowlight") if available_degradations(t)]
    cells = [(to_np(image), "clean")]
    label_img = None
    class_names = ["clean"]
    for i, tier in enumerate(("moderate", "severe")):
        gen = make_generator(SEED + 20 + i)
        degs = [
            degradation_class(available_degradations(t)[0]).sample(tier_severity(tier), gen)
            for t in abair
        ]
        res = degradation_cutmix(
            image.expand(1, -1, -1, -1), degs, make_generator(SEED + 3), num_regions=(4, 4)
        )
        cells.append((to_np(res.degraded), f"CutMix {tier}"))
        label_img = res.label_map[0].numpy()
        class_names = ["clean"] + [d.name for d in degs]
    assert label_img is not None
    cells.append((label_img, "labels (severe)"))
    return cells, class_names


def main() -> None:
    """Build and save the contact sheet."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", type=Path, default=None, help="photo to degrade")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "degradations.png")
    parser.add_argument("--cell", type=int, default=192, help="cell size in pixels")
    args = parser.parse_args()
    torch.manual_seed(0)
    image = load_image(args.image, args.cell)

    rows: list[tuple[str, list[tuple[np.ndarray, str]]]] = []
    for task in (t for t in TASKS if t != "clean"):  # the identity has nothing to show
        for name in available_degradations(task):
            rows.append((f"{name}\n({task})", render_row(name, image)))
    rows.append(("haze → rain\n→ noise", composition_row(image)))
    cut_cells, class_names = cutmix_row(image)
    rows.append(("degradation\nCutMix", cut_cells))

    dpi = 100
    cell_in = args.cell / dpi
    n_rows, n_cols = len(rows), 4
    fig, axes = plt.subplots(
        n_rows,
        n_cols,
        figsize=(n_cols * cell_in + 1.3, n_rows * (cell_in + 0.18) + 0.3),
        dpi=dpi,
        squeeze=False,
    )
    cmap = ListedColormap(plt.get_cmap("tab10").colors[: len(class_names)])
    for r, (label, cells) in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            img, title = cells[c]
            if img.ndim == 2:  # label map
                ax.imshow(
                    img, cmap=cmap, vmin=-0.5, vmax=len(class_names) - 0.5, interpolation="nearest"
                )
                legend = ", ".join(f"{i}={n}" for i, n in enumerate(class_names))
                ax.set_xlabel(legend, fontsize=5.5, wrap=True)
            else:
                ax.imshow(img, interpolation="nearest")
            ax.set_title(title, fontsize=8, pad=2)
            if c == 0:
                ax.set_ylabel(label, fontsize=8)
    fig.subplots_adjust(
        left=1.2 / (n_cols * cell_in + 1.3),
        right=0.995,
        top=0.99,
        bottom=0.01,
        wspace=0.03,
        hspace=0.22,
    )
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    data = buf.getvalue()
    if len(data) > MAX_BYTES:
        # A 256-colour palette with Floyd-Steinberg dithering: visually lossless at this scale
        # and about a third of the size (plain PNG of ~48 photo cells is ~3.5 MB).
        pil = Image.open(io.BytesIO(data)).convert("RGB")
        palette = pil.quantize(colors=256, method=Image.Quantize.MEDIANCUT)
        pil = pil.quantize(palette=palette, dither=Image.Dither.FLOYDSTEINBERG)
        out = io.BytesIO()
        pil.save(out, format="PNG", optimize=True)
        data = out.getvalue()
    args.out.write_bytes(data)
    print(f"wrote {args.out} ({len(data) / 1e6:.2f} MB, {n_rows} rows)")


if __name__ == "__main__":
    main()
