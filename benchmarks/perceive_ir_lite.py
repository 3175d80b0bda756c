"""Perceive-IR-lite ablations at equal budget on this CPU (tiny presets, synthetic tasks).

Stage 1 once (configs/perceive_ir/stage1-lite.yaml: restormer-tiny + the three-tier
perceiver), then stage 2 (configs/perceive_ir/lite-synthetic.yaml) for every seed in three
variants with the same steps, batch and data:

* ``full``       — L1 + 0.1 InfoNCE + 0.05 perceiver quality + 0.1 difficulty perceptual;
* ``no_quality`` — L1 + 0.1 InfoNCE (the quality-aware terms off);
* ``no_code``    — ``code_dim=0`` (no degradation code, no InfoNCE), quality-aware terms on.

Each run's final validation PSNR/SSIM (fixed synthetic crops of the corpus ``val`` split) and
the perceiver's three-tier accuracy on the validation crops go to ``OUT/summary.json``.

    python benchmarks/perceive_ir_lite.py --data CORPUS --out runs/pir-lite-bench \\
        --stage1-steps 400 --steps 200 --seeds 1 2 3
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "perceive_ir"


def _config(name: str, data: str, overrides: list[str]) -> Any:
    from aioir.engine.config import load_config

    return load_config(CONFIGS / name, [f"data.root={data}", *overrides])


def _final(result: Any) -> dict[str, float]:
    rows = [r for r in result.val_history if "val/psnr" in r]
    return {k: float(v) for k, v in rows[-1].items()} if rows else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="photo corpus (data.root)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--stage1-steps", type=int, default=400)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--variants", nargs="+", default=["full", "no_quality", "no_code"])
    parser.add_argument("--patch", type=int, default=64, help="data.patch_size")
    parser.add_argument("--per-task", type=int, default=2, help="data.samples_per_task")
    args = parser.parse_args()
    torch.set_num_threads(1)
    from aioir.engine.run import train
    from aioir.evaluate.report import mean_sd

    # four epochs per run: four probes of the DPL weights, one validation at the end
    common = [
        "trainer.num_threads=1", "trainer.progress_bar=false", "trainer.logger=csv",
        "data.val_items_per_task=4", "trainer.val_every_n_epochs=4", "difficulty_probe.per_task=8",
        f"data.patch_size={args.patch}", f"data.samples_per_task={args.per_task}",
        f"data.val_size={args.patch}", f"difficulty_probe.patch_size={args.patch}",
    ]  # fmt: skip
    out_file = args.out / f"summary-seeds{'-'.join(map(str, args.seeds))}.json"
    summary: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}, "runs": []}
    stage1_export = args.out / "stage1" / "export"
    if not (stage1_export / "training.json").is_file():  # stage 1 once, shared by the seeds
        start = time.perf_counter()
        s1 = train(
            _config(
                "stage1-lite.yaml", args.data,
                [*common, f"trainer.max_steps={args.stage1_steps}",
                 f"data.epoch_length={max(1, args.stage1_steps // 4)}",
                 f"quality_perceiver.start_step={args.stage1_steps // 4}"],
            ),
            args.out / "stage1",
        )  # fmt: skip
        assert s1.export_dir == stage1_export
        summary["stage1_seconds"] = time.perf_counter() - start
    record = json.loads((stage1_export / "training.json").read_text())
    summary["stage1"] = {
        "val": record.get("val_history", [{}])[-1] if record.get("val_history") else {},
        "perceiver": record.get("quality_perceiver"),
    }
    export = str(stage1_export)
    quality = (
        "perceiver_quality: {weight: 0.05, perceiver: EXPORT}, difficulty_perceptual: "
        "{weight: 0.1, features: wavelet, proxies: [{model: EXPORT}]}"
    ).replace("EXPORT", export)
    variants = {
        "full": ["losses={l1: 1.0, degradation_infonce: {weight: 0.1}, " + quality + "}"],
        "no_quality": ["losses={l1: 1.0, degradation_infonce: {weight: 0.1}}"],
        "no_code": ["model.overrides={code_dim: 0}", "losses={l1: 1.0, " + quality + "}"],
    }
    for seed in args.seeds:
        for name in args.variants:
            extra = variants[name]
            overrides = [
                *common, f"trainer.max_steps={args.steps}", f"trainer.seed={seed}",
                f"data.epoch_length={max(1, args.steps // 4)}", *extra,
            ]  # fmt: skip
            start = time.perf_counter()
            result = train(
                _config("lite-synthetic.yaml", args.data, overrides),
                args.out / f"{name}-seed{seed}",
                export=False,
            )
            row = {"variant": name, "seed": seed, "seconds": time.perf_counter() - start}
            row.update(_final(result))
            summary["runs"].append(row)
            print(json.dumps(row), flush=True)
            out_file.write_text(json.dumps(summary, indent=2))
    table = {}
    for name in args.variants:
        values = [
            r["val/psnr"] for r in summary["runs"] if r["variant"] == name and "val/psnr" in r
        ]
        if values:
            mean, sd = mean_sd(values)
            table[name] = {"psnr_mean": mean, "psnr_sd": sd, "n": len(values)}
    summary["table"] = table
    out_file.write_text(json.dumps(summary, indent=2))
    print(json.dumps(table, indent=2))


if __name__ == "__main__":
    main()
