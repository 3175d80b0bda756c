"""ABAIR's measurements at equal budget on the tiny presets: ablation, unseen task, composites.

Every training is an ``aioir train`` run of a ``configs/abair/`` config (subprocess, one thread);
every score comes from :func:`aioir.evaluate.runner.evaluate` on seeded synthetic benchmarks of
the photo corpus's *test* split (training reads its train split). Per seed (``--seeds 1 2 3``):

1. **Ablation** (``docs/methods/abair.md``, "Ablation at equal budget"): every row trains
   S1 + S2 + S3 optimiser steps in all (the phase steps are arguments):

   * ``task data only``: ABAIR-tiny without adapters, from scratch, L1, S1+S2+S3 steps on the
     *task data* (the five single tasks at the benchmark's severity tier, ``moderate``);
   * ``+ synthetic pre-training``: phase I for S1 steps on the *pre-training data* (the same five
     degradation families at any severity, uniform in [0, 1]; L1, no CutMix, no segmentation),
     then a full fine-tune for S2+S3 steps on the task data;
   * ``+ CutMix``: the same with degradation CutMix in phase I;
   * ``+ segmentation``: CutMix + the segmentation head (L1 + 0.1·CE, ``tiny-cpu.yaml``);
   * ``+ adapters``: the ``+ segmentation`` phase I, then instead of the full fine-tune, phase II
     (five adapters, S2 steps) and phase III (the estimator, S3 steps), both on the task data;
     scored one-hot (OH), soft-weighted (SW) and oracle.

   References beside them: the phase-I backbone alone (adapters off, S1 steps) and
   PromptIR-tiny trained like the first row. Benchmark: ``synthetic:BENCH:noise,rain,haze,
   lowlight,blur`` (moderate tier, seeded ``--crop`` crops).
2. **Unseen task** (JPEG): the five-task model on JPEG at quality ``--jpeg-quality`` (no new
   adapter: SW, OH, adapters off) and after ``add-jpeg-adapter.yaml`` (``--jpeg-steps``, only the
   new adapter trains) + ``add-jpeg-estimator.yaml`` (``--jpeg-estimator-steps``, six tasks):
   SW, OH, oracle. The old tasks' oracle scores of the six-task model must equal the five-task
   model's image for image (the backbone and the old adapters are frozen).
3. **Composite**: ABAIR's phase-II model with a multi-label estimator
   (``estimator-composite.yaml``, S3 steps on the five single tasks + the seven CDD-11-like
   composites) against PromptIR-tiny (S1+S2+S3 steps on the task data) on ``composite:BENCH``
   (CDD-11's eleven columns, noise for snow) + ``composite:BENCH:blur+noise``; the ablation's
   full-fine-tune rows are scored there too.

Output: markdown tables (mean ± sd over the seeds and the per-seed values) on stdout and in
``OUT/abair_ablation.md``, everything in ``OUT/abair_ablation.json``, the runs under
``OUT/runs/seedN/`` (a run whose export exists with the same command is reused, so an
interrupted run continues). CPU seconds per run are recorded (the machine may be shared).

    python benchmarks/abair_ablation.py --data data/photos1024-v4 --out runs/abair-ablation \\
        --seeds 1 2 3 --pretrain-steps 120 --adapter-steps 60 --estimator-steps 40

``--smoke`` replaces the step counts and sizes by a few steps on 32-px patches and 2 images per
column: the pipeline end to end, not figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs" / "abair"

#: the five tasks of the ablation (ABAIR's adapter order)
TASKS = ("noise", "rain", "haze", "lowlight", "blur")
#: the JPEG task of add-jpeg-*.yaml (quality ≈ 40 … 10)
JPEG_SPEC = "jpeg: {degradations: [jpeg], severity: [0.65, 1.0]}"
#: the task data's severity tier (= the synthetic benchmark's default tier)
TASK_SEVERITY = "moderate"
#: the pre-training data's severity: uniform in [0, 1] (every tier)
PRETRAIN_SEVERITY = "random"


def task_mapping(tasks: Sequence[str], extra: str = "") -> str:
    """``data.tasks`` as a YAML flow mapping: every registered degradation of each task."""
    items = [f"{t}: {{}}" for t in tasks] + ([extra] if extra else [])
    return "{" + ", ".join(items) + "}"


def composite_combos() -> list[str]:
    """The seven composite (``a+b``) columns of the CDD-11-like benchmark."""
    from aioir.evaluate.benchmarks import CDD11_LIKE_COMBOS

    return [c for c in CDD11_LIKE_COMBOS if "+" in c]


class Run(NamedTuple):
    """One ``aioir train`` run: its config, optimiser steps and ``--set`` overrides."""

    name: str
    config: str
    steps: int
    sets: list[str]
    base: str | None = None  # the run whose export it starts from


def plan(args: argparse.Namespace) -> list[Run]:
    """Every training run of one seed, in dependency order."""
    s1, s2, s3 = args.pretrain_steps, args.adapter_steps, args.estimator_steps
    total = s1 + s2 + s3
    five = task_mapping(TASKS)
    task_data = [f"data.tasks={five}", f"data.severity={TASK_SEVERITY}"]
    pre_data = [f"data.tasks={five}", f"data.severity={PRETRAIN_SEVERITY}"]
    plain = ["model.overrides={tasks: []}", "losses={l1: 1.0}"]  # no adapters, no head
    runs = [
        Run("task-only", "tiny-cpu.yaml", total,
            [*plain, "data.cutmix=false", "abair={}", *task_data]),
        Run("pre-synthetic", "tiny-cpu.yaml", s1, [*plain, "data.cutmix=false", *pre_data]),
        Run("pre-cutmix", "tiny-cpu.yaml", s1, [*plain, "data.cutmix=true", *pre_data]),
        Run("pre-seg", "tiny-cpu.yaml", s1, pre_data),  # CutMix + segmentation head
    ]  # fmt: skip
    for variant in ("synthetic", "cutmix", "seg"):
        runs.append(
            Run(f"ft-{variant}", "tiny-cpu.yaml", s2 + s3,
                [*plain, "data.cutmix=false", "abair={}", *task_data], base=f"pre-{variant}")
        )  # fmt: skip
    runs += [
        Run("adapters", "adapters.yaml", s2, ["model.name=abair-tiny", *task_data], "pre-seg"),
        Run("estimator", "estimator.yaml", s3, ["model.name=abair-tiny", *task_data], "adapters"),
        Run("promptir", "tiny-cpu.yaml", total,
            ["model.name=promptir-tiny", "model.overrides={}", "losses={l1: 1.0}",
             "data.cutmix=false", "abair={}", *task_data]),
    ]  # fmt: skip
    if "jpeg" in args.parts:
        runs += [
            Run("jpeg-adapter", "add-jpeg-adapter.yaml", args.jpeg_steps,
                ["model.name=abair-tiny", f"data.samples_per_task={len(TASKS)}"], "estimator"),
            Run("jpeg-estimator", "add-jpeg-estimator.yaml", args.jpeg_estimator_steps,
                ["model.name=abair-tiny", f"data.tasks={task_mapping(TASKS, JPEG_SPEC)}",
                 f"data.severity={TASK_SEVERITY}"], "jpeg-adapter"),
        ]  # fmt: skip
    if "composite" in args.parts:
        mixed = task_mapping([*TASKS, *composite_combos()])
        runs.append(
            Run("composite-estimator", "estimator-composite.yaml", args.composite_estimator_steps,
                ["model.name=abair-tiny", f"data.tasks={mixed}", f"data.severity={TASK_SEVERITY}"],
                "adapters")
        )  # fmt: skip
    return runs


def command(run: Run, seed: int, folder: Path, args: argparse.Namespace) -> list[str]:
    """The ``aioir train`` command line of ``run`` (its export lands in ``folder/run.name``)."""
    sets = [
        f"data.root={args.data}", f"data.patch_size={args.patch}", f"data.val_size={args.patch}",
        "data.samples_per_task=1", "data.num_workers=0", "data.val_items_per_task=1",
        f"trainer.num_threads={args.threads}", f"trainer.seed={seed}",
        "trainer.progress_bar=false", "trainer.logger=none", "trainer.max_epochs=null",
        f"trainer.val_every_n_steps={run.steps}", "scheduler={name: constant}",
        f"optimizer.lr={args.lr}",
    ]  # fmt: skip
    if run.base is not None:  # ABAIR phases copy by task name; a full fine-tune loads weights
        key = "model.checkpoint" if run.name.startswith("ft-") else "abair.base"
        sets.append(f"{key}={folder / run.base / 'export'}")
    cmd = [sys.executable, "-m", "aioir", "train", "--config", str(CONFIGS / run.config),
           "--output", str(folder / run.name), "--max-steps", str(run.steps),
           "--accelerator", "cpu"]  # fmt: skip
    for s in [*sets, *run.sets]:  # later --set values win
        cmd += ["--set", s]
    return cmd


def train(run: Run, seed: int, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Train ``run`` (or reuse an earlier export of the same command); CPU seconds used."""
    out = folder / run.name
    cmd = command(run, seed, folder, args)
    stamp = out / "command.json"
    done = (out / "export" / "model.safetensors").is_file() and stamp.is_file()
    if done and json.loads(stamp.read_text()) == cmd[1:]:
        return {"steps": run.steps, "cpu_s": 0.0, "wall_s": 0.0, "reused": True}
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with open(out / "train.log", "w") as log:
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, text=True, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        tail = (out / "train.log").read_text()[-3000:]
        raise SystemExit(f"seed {seed}, run {run.name} failed (log {out / 'train.log'}):\n{tail}")
    stamp.write_text(json.dumps(cmd[1:]))
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"steps": run.steps, "cpu_s": round(cpu, 1), "wall_s": round(wall, 1), "reused": False}


# ---------------------------------------------------------------------------- evaluation
def score(model: Path, bench: Any, args: argparse.Namespace, **options: str) -> dict[str, Any]:
    """Evaluate a saved model (with ABAIR's inference options) on one benchmark."""
    from aioir.evaluate.methods import load_method
    from aioir.evaluate.runner import evaluate

    method = load_method(model, device="cpu", model_options=options or None)
    start = time.process_time()
    result = evaluate(method, bench, limit=args.limit, progress=False)
    return {
        "psnr": {c.key: c.psnr for c in result.columns},
        "ssim": {c.key: c.ssim for c in result.columns},
        "input_psnr": {c.key: c.input_psnr for c in result.columns},
        "mean": result.average()["psnr"],
        "images": {f"{r.dataset}/{r.name}": r.psnr for r in result.images},
        "cpu_s": round(time.process_time() - start, 1),
    }


def benchmarks(args: argparse.Namespace) -> dict[str, Any]:
    """The three benchmarks: five tasks, JPEG at one quality, composites (+ blur+noise)."""
    from aioir.evaluate.benchmarks import SyntheticBenchmark, get_benchmark

    bench = Path(args.bench or args.data)
    return {
        "five": get_benchmark(f"synthetic:{bench}:{','.join(TASKS)}", crop=args.crop),
        # JPEGCompression.sample: quality = round(95 − 85·severity)
        "jpeg": SyntheticBenchmark(
            bench, ("jpeg",), severity=(95 - args.jpeg_quality) / 85, crop=args.crop
        ),
        "composite": get_benchmark(f"composite:{bench}", crop=args.composite_crop),
        "blur+noise": get_benchmark(f"composite:{bench}:blur+noise", crop=args.composite_crop),
    }


def lean(result: dict[str, Any]) -> dict[str, Any]:
    """A score without its per-image values (for the JSON)."""
    return {k: v for k, v in result.items() if k != "images"}


def run_seed(seed: int, args: argparse.Namespace, benches: dict[str, Any]) -> dict[str, Any]:
    """Train and score everything for one seed."""
    folder = Path(args.out) / "runs" / f"seed{seed}"
    runs: dict[str, Any] = {}
    for run in plan(args):
        runs[run.name] = train(run, seed, folder, args)
        print(f"# seed {seed} {run.name}: {json.dumps(runs[run.name])}", flush=True)

    def export(name: str) -> Path:
        return folder / name / "export"

    out: dict[str, Any] = {"runs": runs}
    five = benches["five"]
    ablation = {
        "task-only": score(export("task-only"), five, args),
        "synthetic": score(export("ft-synthetic"), five, args),
        "cutmix": score(export("ft-cutmix"), five, args),
        "seg": score(export("ft-seg"), five, args),
        "adapters-oh": score(export("estimator"), five, args, adapter_mode="onehot"),
        "adapters-sw": score(export("estimator"), five, args, adapter_mode="soft"),
        "adapters-oracle": score(export("estimator"), five, args, task="case"),
        "adapters-off": score(export("estimator"), five, args, adapter_mode="off"),
        "promptir": score(export("promptir"), five, args),
    }
    out["ablation"] = {k: lean(v) for k, v in ablation.items()}
    print(f"# seed {seed} ablation: " + json.dumps({k: v["mean"] for k, v in ablation.items()}))

    if "jpeg" in args.parts:
        jpeg, new = benches["jpeg"], export("jpeg-estimator")
        unseen = {
            "five-sw": score(export("estimator"), jpeg, args, adapter_mode="soft"),
            "five-oh": score(export("estimator"), jpeg, args, adapter_mode="onehot"),
            "five-off": score(export("estimator"), jpeg, args, adapter_mode="off"),
            "six-sw": score(new, jpeg, args, adapter_mode="soft"),
            "six-oh": score(new, jpeg, args, adapter_mode="onehot"),
            "six-oracle": score(new, jpeg, args, task="jpeg"),
        }
        old = ablation["adapters-oracle"]["images"]
        now = score(new, five, args, task="case")
        diffs = [abs(now["images"][k] - v) for k, v in old.items()]
        sw_after = score(new, five, args, adapter_mode="soft")
        out["jpeg"] = {k: lean(v) for k, v in unseen.items()}
        out["old_tasks"] = {
            "oracle_before": ablation["adapters-oracle"]["psnr"],
            "oracle_after": now["psnr"],
            "max_abs_diff_db": max(diffs),
            "identical": max(diffs) == 0.0,
            "images": len(diffs),
            "sw_before": ablation["adapters-sw"]["mean"],
            "sw_after": sw_after["mean"],
        }
        print(f"# seed {seed} jpeg: " + json.dumps({k: v["mean"] for k, v in unseen.items()}))
        print(f"# seed {seed} old tasks: max |ΔPSNR| {max(diffs)} dB over {len(diffs)} images")

    if "composite" in args.parts:
        mixed = export("composite-estimator")
        models: dict[str, tuple[Path, dict[str, str]]] = {
            "promptir": (export("promptir"), {}),
            "abair-sw": (mixed, {"adapter_mode": "soft"}),
            "abair-oh": (mixed, {"adapter_mode": "onehot"}),
            "abair-oracle": (mixed, {"task": "case"}),
            "abair-off": (mixed, {"adapter_mode": "off"}),
            "task-only": (export("task-only"), {}),
            "seg": (export("ft-seg"), {}),
        }
        composite = {}
        for key, (path, options) in models.items():
            a = score(path, benches["composite"], args, **options)
            b = score(path, benches["blur+noise"], args, **options)
            combos = [c for c in a["psnr"] if "+" in c]
            composite[key] = {
                "psnr": {**a["psnr"], **b["psnr"]},
                "input_psnr": {**a["input_psnr"], **b["input_psnr"]},
                "mean11": a["mean"],
                "mean_composites": statistics.mean(a["psnr"][c] for c in combos),
                "input_mean11": statistics.mean(a["input_psnr"].values()),
                "input_mean_composites": statistics.mean(a["input_psnr"][c] for c in combos),
                "cpu_s": a["cpu_s"] + b["cpu_s"],
            }
        out["composite"] = composite
        print(
            f"# seed {seed} composite: "
            + json.dumps({k: v["mean11"] for k, v in composite.items()})
        )
    return out


# ---------------------------------------------------------------------------- reporting
def mean_sd(values: Sequence[float], digits: int = 2) -> str:
    """``m ± sd`` (sample sd) over the seeds; ``m`` alone for one seed."""
    from aioir.evaluate.report import format_mean_sd

    return format_mean_sd(values, digits, sd_of_one=False)


def per_seed(values: Sequence[float]) -> str:
    """The per-seed values, ``a / b / c``."""
    return " / ".join(f"{v:.2f}" for v in values)


def report(results: dict[int, dict[str, Any]], args: argparse.Namespace) -> str:
    """The markdown tables."""
    seeds = list(results)
    s1, s2, s3 = args.pretrain_steps, args.adapter_steps, args.estimator_steps
    total = s1 + s2 + s3
    first = results[seeds[0]]
    lines = [
        f"Seeds {', '.join(map(str, seeds))}; PSNR (dB, `clean` protocol, RGB) mean ± sd over "
        f"the seeds, per-seed values last. Patches {args.patch} px, batch 5 (one per task), "
        f"AdamW lr {args.lr:g}, constant; benchmarks on `{args.bench or args.data}` "
        f"(test split), crops {args.crop} px (composites {args.composite_crop} px)"
        + (f", first {args.limit} images per column" if args.limit else "")
        + ".",
        "",
        f"**Ablation** (`synthetic:…:{','.join(TASKS)}`, moderate tier); every row "
        f"{total} optimiser steps (phase I {s1}, fine-tune/adapters {s2}, estimator {s3}):",
        "",
        f"| row | steps | {' | '.join(TASKS)} | mean | mean per seed |",
        "|---|---|" + "---:|" * (len(TASKS) + 2),
    ]
    rows = [
        ("input", "degraded input", "–"),
        ("task-only", "task data only (from scratch)", f"{total}"),
        ("synthetic", "+ synthetic pre-training → full fine-tune", f"{s1} + {s2 + s3}"),
        ("cutmix", "+ CutMix → full fine-tune", f"{s1} + {s2 + s3}"),
        ("seg", "+ segmentation → full fine-tune", f"{s1} + {s2 + s3}"),
        ("adapters-oh", "+ adapters (instead of the fine-tune), OH", f"{s1} + {s2} + {s3}"),
        ("adapters-sw", "+ adapters, SW", f"{s1} + {s2} + {s3}"),
        ("adapters-oracle", "+ adapters, oracle", f"{s1} + {s2} + {s3}"),
        ("adapters-off", "(ref.) phase I alone, adapters off", f"{s1}"),
        ("promptir", "(ref.) PromptIR-tiny, task data only", f"{total}"),
    ]
    for key, label, steps in rows:
        if key == "input":
            per = [[r["ablation"]["task-only"]["input_psnr"][t] for r in results.values()]
                   for t in TASKS]  # fmt: skip
        else:
            per = [[r["ablation"][key]["psnr"][t] for r in results.values()] for t in TASKS]
        means = [statistics.mean(col) for col in zip(*per, strict=True)]
        cells = " | ".join(mean_sd(v) for v in per)
        lines.append(f"| {label} | {steps} | {cells} | {mean_sd(means)} | {per_seed(means)} |")

    if "jpeg" in first:
        q = args.jpeg_quality
        lines += [
            "",
            f"**Unseen task: JPEG Q{q}** (`synthetic:…:jpeg` at quality {q}): the five-task "
            f"model, then a new JPEG adapter ({args.jpeg_steps} steps, batch {len(TASKS)}, "
            f"Q ≈ 10–40) + the estimator re-trained over six tasks "
            f"({args.jpeg_estimator_steps} steps):",
            "",
            "| model | JPEG PSNR | per seed |",
            "|---|---:|---:|",
        ]
        inputs = [r["jpeg"]["five-sw"]["input_psnr"]["jpeg"] for r in results.values()]
        lines.append(f"| degraded input | {mean_sd(inputs)} | {per_seed(inputs)} |")
        for key, label in (
            ("five-sw", "no JPEG adapter, SW"),
            ("five-oh", "no JPEG adapter, OH"),
            ("five-off", "no JPEG adapter, adapters off"),
            ("six-sw", "+ JPEG adapter, SW"),
            ("six-oh", "+ JPEG adapter, OH"),
            ("six-oracle", "+ JPEG adapter, oracle"),
        ):
            vals = [r["jpeg"][key]["psnr"]["jpeg"] for r in results.values()]
            lines.append(f"| {label} | {mean_sd(vals)} | {per_seed(vals)} |")
        old = [r["old_tasks"] for r in results.values()]
        same = all(o["identical"] for o in old)
        lines += [
            "",
            f"Old tasks after adding JPEG, oracle mode: max |ΔPSNR| per image "
            f"{max(o['max_abs_diff_db'] for o in old):.3g} dB over {old[0]['images']} images "
            f"per seed — {'identical on every seed' if same else 'NOT identical'}. "
            f"Five-task SW mean before → after (the estimator changed): "
            f"{mean_sd([o['sw_before'] for o in old])} → {mean_sd([o['sw_after'] for o in old])} dB.",
        ]

    if "composite" in first:
        models = list(first["composite"])
        cols = list(first["composite"][models[0]]["psnr"])
        labels = {
            "promptir": "PromptIR", "abair-sw": "ABAIR SW", "abair-oh": "ABAIR OH",
            "abair-oracle": "ABAIR oracle", "abair-off": "ABAIR adapters off",
            "task-only": "task data only", "seg": "+ seg → fine-tune",
        }  # fmt: skip
        shown = ["promptir", "abair-sw", "abair-oh", "abair-oracle", "abair-off"]
        lines += [
            "",
            f"**Composite** (`composite:…` CDD-11-like, noise for snow, + `blur+noise`; "
            f"moderate): PromptIR-tiny {total} steps on the task data; ABAIR = the ablation's "
            f"phases I–II + a multi-label estimator ({args.composite_estimator_steps} steps, "
            f"five single + seven composite tasks, sigmoid + BCE):",
            "",
            "| column | input | " + " | ".join(labels[m] for m in shown) + " |",
            "|---|---:|" + "---:|" * len(shown),
        ]
        for col in cols:
            inp = [r["composite"][models[0]]["input_psnr"][col] for r in results.values()]
            cells = [mean_sd([r["composite"][m]["psnr"][col] for r in results.values()])
                     for m in shown]  # fmt: skip
            lines.append(f"| {col} | {mean_sd(inp)} | {' | '.join(cells)} |")
        lines += [
            "",
            "| model | mean of the 11 | per seed | mean of the 7 composites | per seed | "
            "blur+noise | per seed |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        inp11 = [r["composite"][models[0]]["input_mean11"] for r in results.values()]
        inp7 = [r["composite"][models[0]]["input_mean_composites"] for r in results.values()]
        inpbn = [r["composite"][models[0]]["input_psnr"]["blur+noise"] for r in results.values()]
        lines.append(
            f"| degraded input | {mean_sd(inp11)} | {per_seed(inp11)} | {mean_sd(inp7)} | "
            f"{per_seed(inp7)} | {mean_sd(inpbn)} | {per_seed(inpbn)} |"
        )
        for m in models:
            a = [r["composite"][m]["mean11"] for r in results.values()]
            b = [r["composite"][m]["mean_composites"] for r in results.values()]
            c = [r["composite"][m]["psnr"]["blur+noise"] for r in results.values()]
            lines.append(
                f"| {labels[m]} | {mean_sd(a)} | {per_seed(a)} | {mean_sd(b)} | {per_seed(b)} | "
                f"{mean_sd(c)} | {per_seed(c)} |"
            )

    cpu = [sum(x["cpu_s"] for x in r["runs"].values()) for r in results.values()]
    lines += ["", f"Training CPU per seed: {per_seed(cpu)} s (reused runs count 0)."]
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="photo corpus (train/val splits)")
    parser.add_argument("--bench", default=None,
                        help="clean benchmark photos: a corpus (its test split) or a folder "
                        "(default: --data)")  # fmt: skip
    parser.add_argument("--out", required=True, help="folder for the runs, .md and .json")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--pretrain-steps", type=int, default=120, help="S1 (phase I)")
    parser.add_argument("--adapter-steps", type=int, default=60,
                        help="S2 (phase II; with S3, the full fine-tune)")  # fmt: skip
    parser.add_argument("--estimator-steps", type=int, default=40, help="S3 (phase III)")
    parser.add_argument("--jpeg-steps", type=int, default=None, help="new adapter (default S2)")
    parser.add_argument("--jpeg-estimator-steps", type=int, default=None,
                        help="six-task estimator (default S3)")  # fmt: skip
    parser.add_argument("--composite-estimator-steps", type=int, default=None,
                        help="multi-label estimator (default S3)")  # fmt: skip
    parser.add_argument("--parts", nargs="+", default=["ablation", "jpeg", "composite"],
                        choices=["ablation", "jpeg", "composite"],
                        help="the ablation always runs (the others build on it)")  # fmt: skip
    parser.add_argument("--patch", type=int, default=48, help="training patch side")
    parser.add_argument("--crop", type=int, default=96, help="five-task/JPEG benchmark crop")
    parser.add_argument("--composite-crop", type=int, default=64)
    parser.add_argument("--jpeg-quality", type=int, default=20)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--limit", type=int, default=None, help="first N images per column")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--smoke", action="store_true",
                        help="2 steps per run, 32-px patches and crops, 2 images per column")  # fmt: skip
    parser.add_argument("--json", default=None, help="default OUT/abair_ablation.json")
    parser.add_argument("--markdown", default=None, help="default OUT/abair_ablation.md")
    args = parser.parse_args(argv)
    if args.smoke:
        args.pretrain_steps = args.adapter_steps = args.estimator_steps = 2
        args.jpeg_steps = args.jpeg_estimator_steps = args.composite_estimator_steps = 2
        args.patch = args.crop = args.composite_crop = 32
        args.limit = 2
    args.jpeg_steps = args.jpeg_steps or args.adapter_steps
    args.jpeg_estimator_steps = args.jpeg_estimator_steps or args.estimator_steps
    args.composite_estimator_steps = args.composite_estimator_steps or args.estimator_steps
    steps = (args.pretrain_steps, args.adapter_steps, args.estimator_steps, args.jpeg_steps,
             args.jpeg_estimator_steps, args.composite_estimator_steps)  # fmt: skip
    if min(steps) < 1:
        parser.error("every step count must be at least 1")
    if not 10 <= args.jpeg_quality <= 95:
        parser.error("--jpeg-quality must lie in [10, 95]")
    if len(set(args.seeds)) != len(args.seeds):
        parser.error("--seeds: a seed is given twice")
    if not Path(args.data).is_dir():
        parser.error(f"--data: {args.data} is not a folder")
    args.data = str(Path(args.data).resolve())
    if args.bench is not None:
        args.bench = str(Path(args.bench).resolve())
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    benches = benchmarks(args)
    start = time.process_time()
    results = {seed: run_seed(seed, args, benches) for seed in args.seeds}
    text = report(results, args)
    print(text)
    Path(args.markdown or out / "abair_ablation.md").write_text(text)
    settings = {k: v for k, v in vars(args).items() if k not in ("json", "markdown")}
    record = {
        "settings": settings,
        "evaluation_cpu_s": round(time.process_time() - start, 1),
        "seeds": {str(k): v for k, v in results.items()},
    }
    Path(args.json or out / "abair_ablation.json").write_text(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
