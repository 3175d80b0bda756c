"""Cost of every registered model: parameters, MACs, forward time and peak memory.

Usage::

    python benchmarks/model_cost.py                      # every paper preset, 256×256, CPU
    python benchmarks/model_cost.py --models udair udair-tiny --size 256 --dtype fp32 bf16
    python benchmarks/model_cost.py --device cuda --markdown

Each (model, dtype) is measured in a fresh subprocess so peak memory (max RSS on the CPU,
``torch.cuda.max_memory_allocated`` on a GPU) belongs to that model alone. MACs count
convolutions and matmuls (``torch.utils.flop_counter``; MACs = FLOPs / 2) on one forward.
Times are the median of ``--repeats`` forwards after ``--warmup`` warm-up forwards, under
``torch.inference_mode`` (and bf16 autocast for ``bf16``).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time


def measure(name: str, size: int, dtype: str, device: str, warmup: int, repeats: int) -> dict:
    """Measure one model in this process (called in a child process)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    import aioir
    from aioir.nn.memory_format import to_channels_last

    model = aioir.load_model(name).eval().to(device)
    params = sum(p.numel() for p in model.parameters())
    x = torch.rand(1, 3, size, size, device=device)
    if device == "cpu":
        model = to_channels_last(model)
        x = x.contiguous(memory_format=torch.channels_last)

    with torch.inference_mode():
        counter = FlopCounterMode(display=False)
        with counter:
            model(x)
        macs = counter.get_total_flops() / 2

    autocast = torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=dtype == "bf16")
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()

    def sync() -> None:
        if device == "cuda":
            torch.cuda.synchronize()

    times = []
    with torch.inference_mode(), autocast:
        for _ in range(warmup):
            model(x)
        sync()
        for _ in range(repeats):
            start = time.perf_counter()
            model(x)
            sync()
            times.append(time.perf_counter() - start)

    if device == "cuda":
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "model": name,
        "dtype": dtype,
        "device": device,
        "size": size,
        "params": params,
        "gmacs": macs / 1e9,
        "ms": 1000 * statistics.median(times),
        "peak_mb": peak_mb,
        "threads": torch.get_num_threads(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=None, help="default: every paper preset")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--dtype", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:  # measure one (model, dtype) and print JSON
        name, dtype = args.child.split("|")
        row = measure(name, args.size, dtype, args.device, args.warmup, args.repeats)
        print(json.dumps(row))
        return 0

    import aioir

    names = args.models or [r.name for r in aioir.list_models() if r.preset == "paper"]
    rows = []
    for name in names:
        for dtype in args.dtype:
            cmd = [
                sys.executable, __file__, "--child", f"{name}|{dtype}", "--size", str(args.size),
                "--device", args.device, "--warmup", str(args.warmup),
                "--repeats", str(args.repeats),
            ]  # fmt: skip
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode != 0:
                print(f"{name} {dtype}: failed\n{out.stderr[-2000:]}", file=sys.stderr)
                continue
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            r = rows[-1]
            print(
                f"{r['model']:18s} {r['dtype']:5s} params {r['params']:>11,d}  "
                f"{r['gmacs']:7.1f} GMACs  {r['ms']:9.1f} ms  peak {r['peak_mb']:8.0f} MB",
                flush=True,
            )

    print()
    print(
        f"Machine: {platform.processor() or platform.machine()}, {args.device}, "
        f"threads {rows[0]['threads'] if rows else '?'}; input 1×3×{args.size}×{args.size}"
    )
    print()
    print("| model | dtype | params | GMACs | forward ms | peak memory MB |")
    print("|---|---|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['model']} | {r['dtype']} | {r['params']:,} | {r['gmacs']:.1f} | "
            f"{r['ms']:.1f} | {r['peak_mb']:.0f} |"
        )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
