"""CPL's ablation at equal budget on the CPU: PromptIR vs + SPM vs + SPM + weight-free CPR.

Each variant trains the tiny preset with ``configs/cpl/synthetic.yaml`` (six synthetic tasks on
the photo corpus) for the same number of optimiser steps and samples, once per seed, and the
final validation PSNR (fixed synthetic items of the corpus ``val`` split, protocol ``clean``)
is collected; the table gives mean ± sd over the seeds and the wall time per run.

    python benchmarks/cpl_ablation.py --data DIR --steps 150 --seeds 1 2 3 --threads 1

Variants: ``promptir`` (promptir-tiny, L1), ``spm`` (cpl-tiny: top-1 sparse prompts, L1),
``spm+cpr-selffeat`` (cpl-tiny, L1 + 1e-3·cpr-selffeat, J = 4). The paper's CPR needs VGG-16
weights, which cannot be downloaded here; ``cpr-selffeat`` is not the paper's CPR.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).parents[1]
CONFIG = REPO / "configs" / "cpl" / "synthetic.yaml"

VARIANTS: dict[str, list[str]] = {
    "promptir": ["model.name=promptir-tiny", "losses={l1: 1.0}"],
    "spm": ["model.name=cpl-tiny", "losses={l1: 1.0}"],
    "spm+cpr-selffeat": ["model.name=cpl-tiny"],  # the config's L1 + 1e-3·cpr-selffeat
}


def run(variant: str, seed: int, args: argparse.Namespace, out: Path) -> dict[str, float]:
    """Train one (variant, seed); returns the final val PSNR and the wall time."""
    sets = [
        f"data.root={args.data}", f"trainer.seed={seed}", f"trainer.num_threads={args.threads}",
        "trainer.max_epochs=null", f"trainer.val_every_n_steps={args.steps}",
        "trainer.progress_bar=false", "trainer.logger=none", f"data.patch_size={args.patch}",
        f"data.batch_size={args.batch}", f"data.val_items_per_task={args.val_items}",
        f"data.val_size={args.patch}", "scheduler.unit=step", f"scheduler.warmup={min(15, args.steps // 4)}",
        f"scheduler.horizon={args.steps}", *VARIANTS[variant],
    ]  # fmt: skip
    cmd = [sys.executable, "-m", "aioir", "train", "--config", str(CONFIG), "--output", str(out),
           "--max-steps", str(args.steps), "--accelerator", "cpu"]  # fmt: skip
    for s in sets:
        cmd += ["--set", s]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{variant} seed {seed} failed:\n{proc.stderr[-3000:]}")
    record = json.loads((out / "training.json").read_text())
    last = record["val_history"][-1]
    return {"psnr": float(last["val/psnr"]), "ssim": float(last["val/ssim"]), "wall_s": wall}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="photo corpus folder (SOURCES.tsv)")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--patch", type=int, default=64)
    parser.add_argument("--batch", type=int, default=6)
    parser.add_argument("--val-items", type=int, default=8, help="validation items per task")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for variant in args.variants:
                r = run(variant, seed, args, Path(tmp) / f"{variant}-{seed}")
                results.setdefault(variant, []).append(r)
                print(f"# {variant} seed {seed}: {json.dumps(r)}", flush=True)
    print(f"| variant ({args.steps} steps, batch {args.batch}×{args.patch}²) | val PSNR (dB) "
          "| val SSIM | s / run |")  # fmt: skip
    print("|---|---|---|---:|")
    for variant, rows in results.items():
        p = [r["psnr"] for r in rows]
        s = [r["ssim"] for r in rows]
        sd = statistics.stdev(p) if len(p) > 1 else 0.0
        ssd = statistics.stdev(s) if len(s) > 1 else 0.0
        wall = statistics.mean(r["wall_s"] for r in rows)
        print(
            f"| {variant} | {statistics.mean(p):.2f} ± {sd:.2f} | "
            f"{statistics.mean(s):.3f} ± {ssd:.3f} | {wall:.0f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
