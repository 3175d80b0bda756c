"""UDAIR test-time and domain adaptation on a shifted target domain (the corpus test photos).

Usage::

    python benchmarks/tta.py --model data/models/udair-small-gpu --photos data/photos1024 \\
        --crop 256 --out benchmarks/tta.md

The target domain uses other generators and parameters than training (see :data:`TARGET`):
Gaussian σ 60–75 or strong camera noise + JPEG q 30–60; rain at 35–55° with 2.4–3.2 px streaks;
haze with depth from luminance and a brown (non-white) airlight; low light at exposure
0.008–0.02 (training: 0.03–0.5); motion blur of 36–48 px with DeblurGAN's shake or defocus
radius 9–12 px; underwater in Jerlov coastal types 5C/7C (training: I–3C); ``clean`` (when the
bank has that task) is the clean crop itself, so its column measures harm. Inputs are seeded
``--crop`` crops of the corpus **test** photos (never trained on); ``adapt`` learns from the
same degradations drawn on the **validation** photos (unlabelled, blind clusters), so no test
image is seen while adapting.

Columns: PSNR/SSIM (protocol ``clean``) without adaptation; faithful TTA (oracle task, the
authors' settings); default TTA (blind, residual zero-init adapters, eval DAM, stopping rule;
its CORAL reference is the bank's stored within-image covariance when the bank has statistics,
and then a second row repeats it with the authors' mean-map reference); the model adapted over
the folder (its default: the mean-map reference; when the bank has statistics a second row uses
the stored within-image covariance); the model after codebook alignment (``aioir adapt --method
codebook``: the same unlabelled target crops, and as source images the training degradations
drawn on the same validation photos). Also: blind cluster-choice accuracy of each chooser on the target domain and on the
training-like (in-domain) degradations, and seconds per image.

``--max-photos N`` keeps the first N test (and validation) photos (shorter runs).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from aioir.color import BT601_LUMA
from aioir.degradations import Compose, Degradation
from aioir.degradations.base import uniform
from aioir.degradations.blur import DefocusBlur, MotionBlur
from aioir.degradations.haze import Haze
from aioir.degradations.identity import Identity
from aioir.degradations.jpeg import JPEGCompression
from aioir.degradations.lowlight import LowLight
from aioir.degradations.noise import CameraNoise, GaussianNoise, brooks_read_noise
from aioir.degradations.rain import RainStreaks
from aioir.degradations.underwater import UnderwaterCast


@dataclasses.dataclass(frozen=True)
class LuminanceHaze(Degradation):
    """Haze whose depth grows with the (smoothed) luminance of the clean image (bright = far)."""

    beta: float = 0.15
    airlight: float = 0.85
    tint: tuple[float, float, float] = (1.1, 0.95, 0.7)

    name = "luminance_haze"

    @classmethod
    def sample(cls, severity: float, generator: torch.Generator) -> LuminanceHaze:
        return cls(beta=uniform(generator, 0.12, 0.2), airlight=uniform(generator, 0.75, 0.9))

    def apply(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        wr, wg, wb = BT601_LUMA
        lum = wr * images[:, 0:1] + wg * images[:, 1:2] + wb * images[:, 2:3]
        small = F.interpolate(lum, scale_factor=1 / 8, mode="area")
        small = F.avg_pool2d(small, 5, stride=1, padding=2, count_include_pad=False)
        rel = F.interpolate(small, size=images.shape[-2:], mode="bilinear", align_corners=False)
        lo, hi = rel.amin(dim=(2, 3), keepdim=True), rel.amax(dim=(2, 3), keepdim=True)
        depth = 1.0 + 9.0 * (rel - lo) / (hi - lo).clamp_min(1e-6)
        haze = Haze(beta=self.beta, airlight=self.airlight, tint=self.tint, depth_map=depth)
        return haze.apply(images, generator)


def _noise(s: float, g: torch.Generator) -> Degradation:
    if uniform(g, 0, 1) < 0.5:
        return GaussianNoise(sigma=uniform(g, 60.0, 75.0))
    shot = math.exp(uniform(g, math.log(1.5e-2), math.log(3e-2)))
    cam = CameraNoise(shot=shot, read=brooks_read_noise(shot, g))
    return Compose((cam, JPEGCompression(quality=int(uniform(g, 30, 60)))))


def _rain(s: float, g: torch.Generator) -> Degradation:
    sign = 1.0 if uniform(g, 0, 1) < 0.5 else -1.0
    return RainStreaks(
        angle=sign * uniform(g, 35.0, 55.0),
        density=uniform(g, 0.004, 0.007),
        length=uniform(g, 25.0, 40.0),
        width=uniform(g, 2.4, 3.2),
        brightness=uniform(g, 0.7, 0.9),
    )


def _lowlight(s: float, g: torch.Generator) -> Degradation:
    shot = math.exp(uniform(g, math.log(1e-3), math.log(3e-3)))
    return LowLight(
        exposure=uniform(g, 0.008, 0.02),
        gamma=uniform(g, 1.2, 1.4),
        shot=shot,
        read=brooks_read_noise(shot, g),
        red_gain=uniform(g, 0.92, 1.08),
        blue_gain=uniform(g, 0.92, 1.08),
    )


def _blur(s: float, g: torch.Generator) -> Degradation:
    if uniform(g, 0, 1) < 0.5:
        seed = int(torch.randint(0, 2**31 - 1, (), generator=g))
        return MotionBlur(length=uniform(g, 36.0, 48.0), anxiety=5e-3, seed=seed)
    return DefocusBlur(radius=uniform(g, 9.0, 12.0))


def _underwater(s: float, g: torch.Generator) -> Degradation:
    water = "5C" if uniform(g, 0, 1) < 0.5 else "7C"
    return UnderwaterCast(
        water_type=water, distance=uniform(g, 3.0, 6.0), surface_depth=uniform(g, 1.0, 3.0)
    )


#: The target-domain generators per task (``clean``: the clean crop, a harm check).
TARGET: dict[str, Any] = {
    "noise": _noise,
    "rain": _rain,
    "haze": lambda s, g: LuminanceHaze.sample(s, g),
    "lowlight": _lowlight,
    "blur": _blur,
    "underwater": _underwater,
    "clean": lambda s, g: Identity(),
}


def _dataset(paths: list[Path], tasks: list[str], crop: int, per: int, target: bool, seed: int):
    from aioir.data.synthetic import SyntheticDegradationDataset, TaskSpec

    spec: Any = {t: TaskSpec((TARGET[t],)) for t in tasks} if target else list(tasks)
    return SyntheticDegradationDataset(
        paths, spec, patch_size=crop, severity="random", seed=seed, deterministic=True,
        length=per * len(paths),
    )  # fmt: skip


def _metrics(out: torch.Tensor, gt: torch.Tensor) -> tuple[float, float]:
    from aioir.metrics import psnr, ssim

    return float(psnr(out[None], gt[None])[0]), float(ssim(out[None], gt[None])[0])


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the markdown tables (and write them to ``--out``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="saved UDAIR model with its bank")
    parser.add_argument("--photos", type=Path, required=True, help="photo corpus folder")
    parser.add_argument("--crop", type=int, default=256, help="crop side (default 256)")
    parser.add_argument("--per-photo", type=int, default=1, help="crops per photo and task")
    parser.add_argument("--tasks", default="", help="comma-separated tasks (default: the bank's)")
    parser.add_argument("--adapt-steps", type=int, default=150, help="aioir adapt steps")
    parser.add_argument(
        "--align-steps", type=int, default=150, help="codebook alignment steps (0: skip)"
    )
    parser.add_argument(
        "--skip-choosers", action="store_true", help="skip the chooser-accuracy tables"
    )
    parser.add_argument(
        "--max-photos", type=int, default=0, help="use the first N test/val photos (0: all)"
    )
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=11, help="base seed of the target inputs")
    parser.add_argument("--out", type=Path, default=None, help="write the markdown here")
    parser.add_argument("--json", type=Path, default=None, help="write per-image results here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    import aioir
    from aioir.data import load_corpus
    from aioir.io import write_image
    from aioir.methods.udair.adapt import AdaptConfig, adapt_to_folder
    from aioir.methods.udair.alignment import AlignConfig, align_codebook
    from aioir.methods.udair.tta import (
        CHOOSERS,
        choose_reference,
        raw_maps,
        resolve_chooser,
        udair_tta,
    )
    from aioir.models import unwrap
    from aioir.restore.api import Restorer

    t_start = time.perf_counter()
    model = aioir.load_model(args.model)
    bank = unwrap(model).source_bank
    tasks = [t for t in args.tasks.split(",") if t] or list(bank.task_names)
    unknown = [t for t in tasks if t not in TARGET]
    if unknown:
        parser.error(f"no target-domain generator for task(s) {', '.join(unknown)}")
    choosers = [c for c in CHOOSERS if c != "auto"]
    if not bank.has_statistics:
        choosers.remove("mahalanobis")
    corpus = load_corpus(args.photos)
    test, val = corpus.split("test"), corpus.split("val")
    if args.max_photos > 0:
        test, val = test[: args.max_photos], val[: args.max_photos]
    target = _dataset(test, tasks, args.crop, args.per_photo, True, args.seed)
    source = _dataset(test, tasks, args.crop, 2 * args.per_photo, False, args.seed)

    # ---- blind choice accuracy (cheap: DAM only)
    def choice_acc(ds) -> dict[str, dict[str, float]]:
        hits: dict[str, dict[str, list[bool]]] = {c: {t: [] for t in tasks} for c in choosers}
        for i in range(len(ds) if choosers else 0):
            item = ds[i]
            raw = raw_maps(unwrap(model), item["input"][None])
            for c in choosers:
                k = choose_reference(raw, bank, c)[0]
                hits[c][item["task"]].append(bank.task_names[k] == item["task"])
        return {
            c: {t: sum(v) / len(v) for t, v in per.items()} | {"all": _mean_all(per)}
            for c, per in hits.items()
        }

    if args.skip_choosers:
        choosers = []
    acc_target, acc_source = choice_acc(target), choice_acc(source)

    # ---- domain adaptation over the validation photos with target degradations
    adapted = aioir.load_model(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        adapt_set = _dataset(val, tasks, args.crop, args.per_photo, True, args.seed + 1000)
        for i in range(len(adapt_set)):
            item = adapt_set[i]
            write_image(folder / f"{i:04d}.png", item["input"].permute(1, 2, 0).numpy())
        adapt_result = adapt_to_folder(
            unwrap(adapted), folder, AdaptConfig(steps=args.adapt_steps, seed=args.seed)
        )
        adapted_stats = None
        if bank.has_statistics and not args.skip_choosers:  # the stored-covariance reference
            adapted_stats = aioir.load_model(args.model)
            config = AdaptConfig(steps=args.adapt_steps, seed=args.seed, reference="statistics")
            adapt_to_folder(unwrap(adapted_stats), folder, config)
        aligned, align_result = None, None
        if args.align_steps > 0:  # codebook alignment: source = training degradations, val
            source_folder = Path(tmp) / "source"
            source_set = _dataset(val, tasks, args.crop, args.per_photo, False, args.seed + 2000)
            for i in range(len(source_set)):
                item = source_set[i]
                write_image(source_folder / f"{i:04d}.png", item["input"].permute(1, 2, 0).numpy())
            aligned = aioir.load_model(args.model)
            align_result = align_codebook(
                unwrap(aligned),
                sorted(folder.glob("*.png")),
                source_folder,
                AlignConfig(steps=args.align_steps, seed=args.seed, crop=min(args.crop, 128)),
            )

    methods: dict[str, Restorer] = {
        "none": Restorer(model, device="cpu", tile=0),
        "default TTA": Restorer(model, device="cpu", tile=0, tta=udair_tta("default")),
        "default TTA, lr 1e-2": Restorer(
            model, device="cpu", tile=0, tta=udair_tta("default", lr=1e-2)
        ),
        "adapt": Restorer(adapted, device="cpu", tile=0),
    }
    if bank.has_statistics:  # the same with the authors' reference, for comparison
        methods["default TTA, mean-map ref"] = Restorer(
            model, device="cpu", tile=0, tta=udair_tta("default", reference="mean_map")
        )
    if adapted_stats is not None:
        methods["adapt, statistics ref"] = Restorer(adapted_stats, device="cpu", tile=0)
    if aligned is not None:
        methods["codebook align"] = Restorer(aligned, device="cpu", tile=0)
    rows: list[dict[str, Any]] = []
    for i in range(len(target)):
        item = target[i]
        task = item["task"]
        for name, restorer in methods.items():
            rows.append(_row(name, item, restorer))
        faithful = Restorer(model, device="cpu", tile=0, tta=udair_tta("faithful", task=task))
        rows.append(_row("faithful TTA", item, faithful))

    chooser = resolve_chooser("auto", bank)
    text = _report(rows, tasks, acc_target, acc_source, adapt_result, args, t_start, chooser)
    if align_result is not None:
        s = align_result.summary()
        b, a = s["before"], s["after"]
        text += (
            f"\ncodebook align: {s['images']} target / {s['source_images']} source crops, "
            f"{s['steps']} steps, crop {s['crop']}; probe L_align {b['align']:.4g} → "
            f"{a['align']:.4g} (usage KL {b['usage_kl']:.3g} → {a['usage_kl']:.3g}, CORAL z "
            f"{b['coral_z']:.3g} → {a['coral_z']:.3g}, hard-usage TV {b['usage_tv']:.3g} → "
            f"{a['usage_tv']:.3g}), source L1 change {a['source_l1']:.3g}, {s['seconds']:.0f} s\n"
        )
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return 0


def _mean_all(per: dict[str, list[bool]]) -> float:
    flat = [h for v in per.values() for h in v]
    return sum(flat) / max(1, len(flat))


def _row(name: str, item: dict[str, Any], restorer: Any) -> dict[str, Any]:
    """Restore one target item with ``restorer``: its scores, wall and CPU seconds, and what
    the adapter (if any) chose."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = restorer.restore_tensor(item["input"][None])[0]
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    p, s = _metrics(out.clamp(0, 1), item["target"])
    row = {"method": name, "task": item["task"], "image": item["name"], "psnr": p, "ssim": s,
           "seconds": seconds, "cpu_seconds": cpu_seconds}  # fmt: skip
    adapter = restorer.adapter
    if adapter is not None and getattr(adapter, "reports", None):
        rep = adapter.reports[0]
        row.update(chosen=rep["task"], steps=rep["steps"], losses=rep["losses"])
    return row


def _report(rows, tasks, acc_target, acc_source, adapt_result, args, t_start, chooser) -> str:
    order = [
        "none",
        "faithful TTA",
        "default TTA",
        "default TTA, mean-map ref",
        "default TTA, lr 1e-2",
        "adapt",
        "adapt, statistics ref",
        "codebook align",
    ]
    order = [m for m in order if any(r["method"] == m for r in rows)]
    lines = [
        "protocol clean: RGB, PSNR + SSIM (11×11 Gaussian σ 1.5), full crop, clipped, "
        "mean of per-image values",
        "",
        "| method | " + " | ".join(tasks) + " | mean | s/image |",
        "|---|" + "---|" * (len(tasks) + 2),
    ]
    for m in order:
        cells = []
        for t in tasks:
            sel = [r for r in rows if r["method"] == m and r["task"] == t]
            cells.append(f"{_avg(sel, 'psnr'):.2f} / {_avg(sel, 'ssim'):.3f}" if sel else "–")
        sel = [r for r in rows if r["method"] == m]
        lines.append(
            f"| {m} | " + " | ".join(cells)
            + f" | {_avg(sel, 'psnr'):.2f} / {_avg(sel, 'ssim'):.3f} | {_avg(sel, 'seconds'):.2f} |"
        )  # fmt: skip
    dflt = [r for r in rows if r["method"] == "default TTA"]
    steps = _avg(dflt, "steps")
    lines += [
        "",
        f"default TTA: mean updates {steps:.1f}; blind choice of the reference "
        f"(chooser {chooser}) correct on {sum(r['chosen'] == r['task'] for r in dflt)}/{len(dflt)}",
        "",
        "CPU seconds per image (process time, all threads): "
        + ", ".join(
            f"{m} {_avg([r for r in rows if r['method'] == m], 'cpu_seconds'):.2f}" for m in order
        ),
        "",
        "Blind cluster choice accuracy (target domain | in-domain degradations):",
        "",
        "| chooser | " + " | ".join(tasks) + " | all |",
        "|---|" + "---|" * (len(tasks) + 1),
    ]
    for c in acc_target:
        cells = [f"{acc_target[c][t]:.2f} \\| {acc_source[c][t]:.2f}" for t in tasks]
        lines.append(
            f"| {c} | " + " | ".join(cells)
            + f" | {acc_target[c]['all']:.2f} \\| {acc_source[c]['all']:.2f} |"
        )  # fmt: skip
    s = adapt_result.summary()
    lines += [
        "",
        f"adapt: {s['images']} validation-photo crops, clusters {s['clusters']}, {s['steps']} "
        f"steps, reference {s['reference']}, probe CORAL loss {s['initial_loss']:.3g} → "
        f"{s['final_loss']:.3g}, {s['seconds']:.0f} s",
        "",
        "command: python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        f"machine: {platform.machine()} {platform.processor() or ''}, torch "
        f"{torch.__version__}, {torch.get_num_threads()} threads; wall "
        f"{time.perf_counter() - t_start:.0f} s",
    ]
    return "\n".join(lines) + "\n"


def _avg(rows: list[dict[str, Any]], key: str) -> float:
    vals = [r[key] for r in rows if key in r and r[key] is not None and math.isfinite(r[key])]
    return sum(vals) / len(vals) if vals else float("nan")


if __name__ == "__main__":
    sys.exit(main())
