"""CPL's ablation at equal budget on the CPU: PromptIR vs + SPM vs + SPM + weight-free CPR.

Each variant trains the tiny preset with ``configs/cpl/synthetic.yaml`` (six synthetic tasks on
the photo corpus) for the same number of optimiser steps and samples, once per seed, and the
final validation PSNR (fixed synthetic items of the corpus ``val`` split, protocol ``clean``)
is collected; the table gives mean ± sd over the seeds and the wall time per run.

    python benchmarks/cpl_ablation.py --data DIR --steps 300 --patch 48 --batch 4 \\
        --val-items 4 --seeds 1 2 3 --threads 1 --composite --cpr-weight 1e-3 1e-2 1e-1 \\
        --out runs/cpl-ablation

Variants: ``promptir`` (promptir-tiny, L1), ``spm`` (cpl-tiny: top-1 sparse prompts, L1),
``spm+cpr-selffeat`` (cpl-tiny, L1 + λ·cpr-selffeat, J = 4; one row per ``--cpr-weight`` λ,
default the config's 1e-3). The paper's CPR needs VGG-16 weights, which cannot be downloaded
here; ``cpr-selffeat`` is not the paper's CPR.

Every run is kept in ``--out`` (``ROW-seedN/``: the ``aioir train`` folder with ``export/``,
plus ``ablation.json``); a run whose folder already holds a finished run with the same settings
is reused, not retrained, so rows and seeds can be added later and the models re-evaluated.
With ``--composite`` each exported model is also scored by ``aioir evaluate --benchmark
composite:DATA --crop 64`` (``--composite-crop``; the CDD-11-like set: 11 combinations of low light, haze, rain and
noise on the corpus ``test`` split; ``composite-crop64.json`` / ``.md`` in the run folder,
read again, not recomputed, when the run is reused, unless ``--reevaluate``):
the mean of the 11 columns and of the 7 composites (two or more components). The tables go to
stdout and ``--out``/``summary.md``, everything (per seed, per column, paired against
PromptIR) to ``--out``/``summary.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

REPO = Path(__file__).parents[1]
CONFIG = REPO / "configs" / "cpl" / "synthetic.yaml"

VARIANTS: dict[str, list[str]] = {
    "promptir": ["model.name=promptir-tiny", "losses={l1: 1.0}"],
    "spm": ["model.name=cpl-tiny", "losses={l1: 1.0}"],
    "spm+cpr-selffeat": ["model.name=cpl-tiny"],  # the config's L1 + λ·cpr-selffeat
}
#: the variant whose contrastive weight ``--cpr-weight`` sweeps, and its loss in the config
CPR_VARIANT, CPR_LOSS = "spm+cpr-selffeat", "cpr-selffeat"
#: ``configs/cpl/synthetic.yaml``'s λ (what RESULTS §8 ran)
DEFAULT_CPR_WEIGHT = 1.0e-3
#: the row every other row is paired against, seed by seed
BASELINE = "promptir"
#: the per-run numbers that are summarised (mean ± sd, paired differences)
METRICS = ("val_psnr", "val_ssim", "composite_all", "composite_mixed")


def _yaml_float(value: float) -> str:
    """``value`` as a YAML float (``1e-05`` would be read as a string: PyYAML needs the dot)."""
    text = repr(float(value))
    return text.replace("e", ".0e") if "e" in text and "." not in text else text


class Row(NamedTuple):
    """One row of the table: a variant and, for the CPR variant, its λ."""

    variant: str
    cpr_weight: float | None = None

    @property
    def name(self) -> str:
        """Row label, ``spm+cpr-selffeat λ=0.01`` for a CPR row."""
        return self.variant if self.cpr_weight is None else f"{self.variant} λ={self.cpr_weight:g}"

    @property
    def slug(self) -> str:
        """Folder-name form of :attr:`name`."""
        return self.variant if self.cpr_weight is None else f"{self.variant}-l{self.cpr_weight:g}"

    def overrides(self) -> list[str]:
        """``--set`` values that make the variant from the config."""
        sets = list(VARIANTS[self.variant])
        if self.cpr_weight is not None:
            sets.append(f"losses.{CPR_LOSS}.weight={_yaml_float(self.cpr_weight)}")
        return sets


def table_rows(variants: list[str], cpr_weights: list[float]) -> list[Row]:
    """The rows in order: one per variant, the CPR variant once per λ."""
    rows: list[Row] = []
    for variant in variants:
        if variant == CPR_VARIANT:
            rows += [Row(variant, w) for w in cpr_weights]
        else:
            rows.append(Row(variant))
    return rows


def train_settings(row: Row, seed: int, args: argparse.Namespace) -> list[str]:
    """The ``aioir train`` overrides of one (row, seed) (what a kept run must match)."""
    return [
        f"data.root={Path(args.data).resolve()}", f"trainer.seed={seed}",
        f"trainer.num_threads={args.threads}", "trainer.max_epochs=null",
        f"trainer.max_steps={args.steps}", f"trainer.val_every_n_steps={args.steps}",
        "trainer.progress_bar=false", "trainer.logger=none", f"data.patch_size={args.patch}",
        f"data.batch_size={args.batch}", f"data.val_items_per_task={args.val_items}",
        f"data.val_size={args.patch}", "scheduler.unit=step", f"scheduler.warmup={min(15, args.steps // 4)}",
        f"scheduler.horizon={args.steps}", *row.overrides(),
    ]  # fmt: skip


def _env(threads: int) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": str(threads)}


def train(row: Row, seed: int, args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """Train one (row, seed) into ``folder`` or reuse the finished run there; its record."""
    sets = train_settings(row, seed, args)
    record_path = folder / "ablation.json"
    if record_path.is_file():
        record = json.loads(record_path.read_text())
        if record.get("settings") != sets:
            raise SystemExit(
                f"{folder}: holds a run with other settings; pass another --out or remove it"
            )
        return {**record, "reused": True}
    if folder.exists():
        raise SystemExit(f"{folder}: exists without a finished run ({record_path.name}); remove it")
    cmd = [sys.executable, "-m", "aioir", "train", "--config", str(CONFIG), "--output", str(folder),
           "--accelerator", "cpu", "--set", *sets]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(args.threads))
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{row.name} seed {seed} failed:\n{proc.stderr[-3000:]}")
    last = json.loads((folder / "training.json").read_text())["val_history"][-1]
    record = {
        "row": row.name, "variant": row.variant, "cpr_weight": row.cpr_weight, "seed": seed,
        "settings": sets, "val_psnr": float(last["val/psnr"]),
        "val_ssim": float(last["val/ssim"]), "wall_s": round(wall, 2),
    }  # fmt: skip
    record_path.write_text(json.dumps(record, indent=2) + "\n")
    return {**record, "reused": False}


def composite_scores(result: Any) -> dict[str, Any]:
    """PSNR means of a ``composite:`` :class:`~aioir.evaluate.report.BenchmarkResult`: over
    every column (``all``), the composites (``mixed``: two or more components) and the single
    degradations, for the output and for the degraded input, plus each column's."""
    from aioir.data.synthetic import composite_parts

    def mean(columns: list[Any], key: str) -> float:
        return statistics.fmean(getattr(c, key) for c in columns)

    mixed = [c for c in result.columns if composite_parts(c.key)]
    single = [c for c in result.columns if not composite_parts(c.key)]
    if not mixed:
        raise SystemExit(f"{result.benchmark}: no composite column")
    groups = {"all": result.columns, "mixed": mixed, "single": single}
    return {
        **{f"{g}_psnr": mean(cols, "psnr") for g, cols in groups.items() if cols},
        **{f"input_{g}_psnr": mean(cols, "input_psnr") for g, cols in groups.items() if cols},
        "columns": {c.key: c.psnr for c in result.columns},
        "images": len(result.images),
    }


def evaluate_composite(folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Score ``folder/export`` with ``aioir evaluate --benchmark composite:DATA``; the means
    of :func:`composite_scores`. The JSON and the table stay in ``folder``
    (``composite-cropN.json`` / ``.md``); an existing JSON of the same set is read instead
    unless ``--reevaluate``."""
    from aioir.evaluate.report import BenchmarkResult

    def read() -> BenchmarkResult:
        return BenchmarkResult.from_dict(json.loads(out.read_text())["results"][0])

    data = Path(args.composite_data or args.data).resolve()
    out = folder / f"composite-crop{args.composite_crop}.json"
    if out.is_file() and not args.reevaluate:  # a kept run scored before on the same set
        result = read()
        if result.benchmark == f"composite:{data}":
            return composite_scores(result)
    cmd = [sys.executable, "-m", "aioir", "evaluate", "--model", str(folder / "export"),
           "--benchmark", f"composite:{data}", "--crop", str(args.composite_crop), "--json",
           str(out), "--device", "cpu", "--no-progress"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(args.threads))
    if proc.returncode != 0:
        raise SystemExit(f"{folder}: aioir evaluate failed:\n{proc.stderr[-3000:]}")
    out.with_suffix(".md").write_text(proc.stdout)
    return composite_scores(read())


def _seq(values: list[float], digits: int = 2, sign: bool = False) -> str:
    return ", ".join(f"{v:{'+' if sign else ''}.{digits}f}" for v in values)


def summarise(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per row (in order of first appearance): the seeds, each metric per seed with its mean
    and sd, the wall time, and each metric's per-seed difference to :data:`BASELINE` (on the
    seeds both rows ran)."""
    from aioir.evaluate.report import mean_sd

    by_row: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        by_row.setdefault(r["row"], []).append(r)
    base = {r["seed"]: r for r in by_row.get(BASELINE, [])}
    summary: dict[str, dict[str, Any]] = {}
    for name, runs in by_row.items():
        row: dict[str, Any] = {"seeds": [r["seed"] for r in runs]}
        for m in METRICS:
            if all(m in r for r in runs):
                values = [r[m] for r in runs]
                mean, sd = mean_sd(values)
                row[m] = {"values": values, "mean": mean, "sd": sd}
        row["wall_s"] = statistics.fmean(r["wall_s"] for r in runs)
        paired = [r for r in runs if r["seed"] in base]
        if name != BASELINE and paired:
            row["paired_vs_" + BASELINE] = {
                "seeds": [r["seed"] for r in paired],
                **{
                    m: [r[m] - base[r["seed"]][m] for r in paired]
                    for m in METRICS
                    if all(m in r and m in base[r["seed"]] for r in paired)
                },
            }
        summary[name] = row
    return summary


def markdown(summary: dict[str, dict[str, Any]], args: argparse.Namespace) -> str:
    """The tables: scores per row (mean ± sd over seeds) and the per-seed pairs vs PromptIR."""
    from aioir.evaluate.report import format_mean_sd as _ms

    composite = any("composite_all" in r for r in summary.values())
    head = f"| row ({args.steps} steps, batch {args.batch}×{args.patch}²) | seeds | val PSNR (dB), per seed | mean ± sd | val SSIM |"  # fmt: skip
    rule = "|---|---|---|---|---|"
    if composite:
        head += (
            f" composite mean of 11 (dB, crop {args.composite_crop}) | mean of the 7 composites |"
        )
        rule += "---|---|"
    lines = [head + " s / run |", rule + "---:|"]
    for name, r in summary.items():
        cells = [name, _seq(r["seeds"], 0), _seq(r["val_psnr"]["values"]),
                 _ms(r["val_psnr"]["values"]), _ms(r["val_ssim"]["values"], 3)]  # fmt: skip
        if composite:
            cells += [_ms(r["composite_all"]["values"]), _ms(r["composite_mixed"]["values"])]
        lines.append("| " + " | ".join([*cells, f"{r['wall_s']:.0f}"]) + " |")
    key = "paired_vs_" + BASELINE
    paired = {n: r[key] for n, r in summary.items() if key in r}
    if paired:
        names = {"val_psnr": "val PSNR", "composite_all": "composite 11", "composite_mixed": "7 composites"}  # fmt: skip
        shown = [m for m in names if all(m in p for p in paired.values())]
        lines += ["", f"Paired against {BASELINE}, per seed (dB; mean in brackets):", ""]
        lines.append("| row | seeds | " + " | ".join(f"Δ {names[m]}" for m in shown) + " |")
        lines.append("|---|---|" + "---|" * len(shown))
        for name, p in paired.items():
            cells = [f"{_seq(p[m], sign=True)} ({statistics.fmean(p[m]):+.2f})" for m in shown]
            lines.append(f"| {name} | {_seq(p['seeds'], 0)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="photo corpus folder (SOURCES.tsv)")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument(
        "--cpr-weight", type=float, nargs="+", default=[DEFAULT_CPR_WEIGHT], metavar="λ",
        help=f"λ of {CPR_LOSS} in the {CPR_VARIANT} variant, one row each (default: the "
        f"config's {DEFAULT_CPR_WEIGHT:g})",
    )  # fmt: skip
    parser.add_argument("--patch", type=int, default=64)
    parser.add_argument("--batch", type=int, default=6)
    parser.add_argument("--val-items", type=int, default=8, help="validation items per task")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--out", type=Path, default=Path("runs/cpl-ablation"),
        help="folder that keeps every run (ROW-seedN/) and the summary (default %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--composite", action="store_true",
        help="also score every model on composite:DATA (aioir evaluate; CDD-11-like)",
    )  # fmt: skip
    parser.add_argument("--composite-crop", type=int, default=64, help="its crop side")
    parser.add_argument(
        "--composite-data", help="clean photos of the composite set (default: --data's test split)"
    )
    parser.add_argument(
        "--reevaluate", action="store_true",
        help="score kept runs again even where their composite JSON exists",
    )  # fmt: skip
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if any(w < 0 for w in args.cpr_weight):
        raise SystemExit("--cpr-weight: λ must be ≥ 0")
    if CPR_VARIANT not in args.variants and args.cpr_weight != [DEFAULT_CPR_WEIGHT]:
        raise SystemExit(f"--cpr-weight: only the {CPR_VARIANT} variant takes a λ")
    rows = table_rows(args.variants, args.cpr_weight)
    if len({r.slug for r in rows}) != len(rows):
        raise SystemExit("--cpr-weight: the same λ twice")
    args.out.mkdir(parents=True, exist_ok=True)
    records = []
    for seed in args.seeds:
        for row in rows:
            folder = args.out / f"{row.slug}-seed{seed}"
            record = train(row, seed, args, folder)
            if args.composite:
                scores = evaluate_composite(folder, args)
                record.update(composite_all=scores["all_psnr"], composite_mixed=scores["mixed_psnr"],
                              composite=scores)  # fmt: skip
            records.append(record)
            brief = {k: record.get(k) for k in ("val_psnr", "val_ssim", *METRICS[2:], "wall_s", "reused")}  # fmt: skip
            print(f"# {row.name} seed {seed}: {json.dumps(brief)}", flush=True)
    summary = summarise(records)
    text = markdown(summary, args)
    print(text)
    (args.out / "summary.md").write_text(text + "\n")
    doc = {"settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
           "rows": summary, "runs": records}  # fmt: skip
    (args.out / "summary.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
