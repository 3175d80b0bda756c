"""Why a model loses to a mildly blurred input: per-image diagnostics on synthetic test crops.

Usage::

    python benchmarks/blur_diagnostics.py --photos data/photos1024 --model default --crop 256
    python benchmarks/blur_diagnostics.py --photos data/photos1024 --model default \\
        --learning-curve 1500 --curve-batch 16

For every case of ``synthetic:PHOTOS:TASKS`` (default ``blur,clean``; the corpus's ``test``
split, seeded, the same inputs as ``aioir evaluate``) it prints one row:

* PSNR of the input and of the model's output against the clean target;
* ``oracle``: the PSNR of the best ``K×K`` linear filter of the input, fitted by least squares
  against the target *of that image* (one filter for the three channels). It uses the answer, so
  it is an upper bound on what any linear restoration could do, not a method;
* the model's change to the input (output − input) split into three orthogonal parts, each as a
  PSNR-like level (higher = smaller): ``offset`` (the per-channel mean, shown ×255), ``smooth``
  (a 9×9 box low-pass of the rest) and ``detail`` (what is left). An exact identity is ∞ on all.

``--learning-curve STEPS`` also trains a plain residual CNN (10 conv layers, 48 channels) from
scratch on blur-only training patches of the corpus (96², random severity, the default config's
jitter) and prints its validation gain over the input every ``STEPS/5`` steps, split into the
textured (input < 36 dB) and flat validation crops: how fast *any* network learns this blur mix.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

TEXTURED_BELOW_DB = 36.0  # validation blur crops whose input scores less count as textured


def psnr(a: Tensor, b: Tensor) -> float:
    """RGB PSNR (:func:`aioir.metrics.psnr`) of two 3×H×W or 1×3×H×W images; ∞ when identical."""
    from aioir.metrics import psnr as metric_psnr

    return float(metric_psnr(a.reshape(1, *a.shape[-3:]), b.reshape(1, *b.shape[-3:]))[0])


def level(x: Tensor) -> float:
    """A signal's RMS as a PSNR-like level in dB (∞ for zero)."""
    return psnr(x, torch.zeros_like(x))


def oracle_linear_filter(x: Tensor, target: Tensor, taps: int) -> Tensor:
    """The ``taps×taps`` filter (shared by the channels) that best maps ``x`` to ``target``."""
    xp = F.pad(x.double()[:, None], (taps // 2,) * 4, mode="reflect")  # 3×1×(H+)×(W+)
    design = F.unfold(xp, taps).permute(0, 2, 1).reshape(-1, taps * taps)
    h = torch.linalg.lstsq(design, target.double().reshape(-1, 1)).solution
    return (design @ h).reshape(target.shape).clamp(0.0, 1.0).float()


def decompose(change: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``change`` (3×H×W) = per-channel offset + 9×9 box low-pass of the rest + detail."""
    offset = change.mean(dim=(1, 2), keepdim=True)
    rest = (change - offset)[None]
    smooth = F.avg_pool2d(F.pad(rest, (4, 4, 4, 4), mode="reflect"), 9, stride=1)[0]
    return offset, smooth, change - offset - smooth


def case_rows(model: str, photos: Path, tasks: str, crop: int | None, taps: int) -> list[str]:
    from aioir.evaluate.benchmarks import get_benchmark
    from aioir.restore.api import Restorer

    restorer = Restorer(model, device="cpu")
    bench = get_benchmark(f"synthetic:{photos}:{tasks}", crop=crop)
    rows = [
        f"| task | image | input | {model} | oracle {taps}×{taps} | offset ×255 (R, G, B) | "
        "offset | smooth | detail |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for column in bench.columns(None):
        for i in range(len(column)):
            case = column[i]
            x, t = case.input, case.target
            y = restorer.restore_tensor(x[None])[0]
            oracle = psnr(oracle_linear_filter(x, t, taps), t) if column.task != "clean" else None
            offset, smooth, detail = decompose(y - x)
            shift = ", ".join(f"{255 * v:+.2f}" for v in offset.flatten().tolist())
            rows.append(
                f"| {column.key} | {Path(case.name).stem} | {psnr(x, t):.2f} | {psnr(y, t):.2f} | "
                f"{'–' if oracle is None else f'{oracle:.2f}'} | {shift} | "
                f"{level(offset.expand_as(y)):.1f} | {level(smooth):.1f} | {level(detail):.1f} |"
            )
    return rows


class PlainCNN(nn.Module):
    """``x + f(x)``: ``depth`` 3×3 convolutions with ReLUs, ``width`` channels."""

    def __init__(self, width: int = 48, depth: int = 10) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, width, 3, padding=1), nn.ReLU()]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU()]
        layers.append(nn.Conv2d(width, 3, 3, padding=1))
        self.body = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


def learning_curve(photos: Path, steps: int, batch: int, lr: float, seed: int) -> list[str]:
    """Train :class:`PlainCNN` on blur only; validation gains on textured / flat blur crops."""
    from torch.utils.data import DataLoader

    from aioir.data import load_corpus
    from aioir.data.synthetic import SyntheticDegradationDataset

    torch.manual_seed(seed)
    corpus = load_corpus(photos)
    train = SyntheticDegradationDataset(
        corpus.split("train"), ["blur"], 96, "random", seed, False, length=100_000,
        augment="udair", photometric=0.8, white_balance=0.8,
    )  # fmt: skip
    val = SyntheticDegradationDataset(
        corpus.split("val"), ["blur"], 128, "random", 0, True, length=12
    )
    val_items = [(v["input"][None], v["target"][None]) for v in (val[i] for i in range(len(val)))]
    model = PlainCNN().to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    loader = DataLoader(train, batch_size=batch, shuffle=True, num_workers=1, drop_last=True)

    def validate(step: int) -> str:
        model.eval()
        gains: dict[str, list[float]] = {"textured": [], "flat": []}
        with torch.no_grad():
            for x, t in val_items:
                kind = "textured" if psnr(x, t) < TEXTURED_BELOW_DB else "flat"
                gains[kind].append(psnr(model(x).clamp(0, 1), t) - psnr(x, t))
        model.train()
        mean = {k: sum(v) / max(1, len(v)) for k, v in gains.items()}
        return f"| {step} | {mean['textured']:+.2f} | {mean['flat']:+.2f} |"

    rows = [
        f"Plain CNN, blur only, batch {batch} × 96², lr {lr:g}; validation gain over the input "
        f"(dB) on {len(val_items)} val crops:",
        "",
        "| step | textured crops | flat crops |",
        "|---|---|---|",
        validate(0),
    ]
    every = max(1, steps // 5)
    for step, item in enumerate(loader, start=1):
        x = item["input"].to(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = model(x)
        loss = (y.float() - item["target"]).abs().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % every == 0 or step == steps:
            rows.append(validate(step))
            print(rows[-1], file=sys.stderr)
        if step >= steps:
            break
    return rows


def main(argv: list[str] | None = None) -> int:
    """Print the per-case table (and the learning curve) as markdown."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, required=True, help="photo corpus folder")
    parser.add_argument("--model", default="default", help="model name or saved-model path")
    parser.add_argument("--tasks", default="blur,clean", help="comma-separated tasks")
    parser.add_argument("--crop", type=int, default=256, help="seeded N×N crop (0 = whole)")
    parser.add_argument("--taps", type=int, default=15, help="oracle filter side (odd)")
    parser.add_argument("--learning-curve", type=int, default=0, metavar="STEPS")
    parser.add_argument("--curve-batch", type=int, default=16)
    parser.add_argument("--curve-lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.taps < 1 or args.taps % 2 == 0:
        parser.error("--taps must be a positive odd number")

    start = time.perf_counter()
    lines = case_rows(args.model, args.photos, args.tasks, args.crop or None, args.taps)
    if args.learning_curve > 0:
        curve = learning_curve(
            args.photos, args.learning_curve, args.curve_batch, args.curve_lr, args.seed
        )
        lines += ["", *curve]
    lines += [
        "",
        "Command: `python benchmarks/blur_diagnostics.py "
        + " ".join(sys.argv[1:] if argv is None else argv)
        + "`",
        f"Machine: {platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; wall {time.perf_counter() - start:.0f} s",
    ]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
