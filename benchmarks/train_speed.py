"""Training speed on this machine: optimiser steps per second of registered presets.

One step = forward + loss + backward + AdamW, batch 8×3×128² by default, random tensors (the
data pipeline is not measured). UDAIR: forward_features + L1 + 0.2·CSCL (task-ordered: batch/2
tasks × 2); other models: L1. Variants: fp32 and bf16 autocast, each with and without
channels_last. ``--set KEY=VALUE`` overrides a preset's constructor arguments (candidate sizes).

Besides steps/s (wall clock), each row gives the median *CPU* seconds of the process per step:
on a machine shared with other jobs, CPU time at ``--threads 1`` measures the work of a step
while wall time measures the neighbours too.

    python benchmarks/train_speed.py --models udair-tiny udair-small --steps 5 --threads 2
    python benchmarks/train_speed.py --models udair-small udair-naf-small --batch 14 --size 96 \
        --bf16-only --channels-last-only --threads 2
    python benchmarks/train_speed.py --models udair-naf-small --set 'num_blocks=[1,1,2,4]' \
        --batch 14 --size 96 --bf16-only --channels-last-only --threads 1
    python benchmarks/train_speed.py --models udair-small --device cuda --batches 36 84 168 --bf16-only

Report the machine and its load with the numbers (``benchmarks/RESULTS.md``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import time
from typing import Any

import torch
import yaml


def measure(
    name: str,
    batch: int,
    size: int,
    steps: int,
    bf16: bool,
    channels_last: bool,
    device: str = "cpu",
    overrides: dict[str, Any] | None = None,
) -> tuple[float, float]:
    """Steps per second (after one warm-up step) on ``device`` and the median CPU seconds of
    this process per step."""
    from aioir.losses import CompositeLoss, LossInputs
    from aioir.models import create_model
    from aioir.nn.memory_format import to_channels_last

    torch.manual_seed(0)
    model = create_model(name, **(overrides or {})).train().to(device)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    if channels_last:
        to_channels_last(model)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    udair = hasattr(model, "forward_features")
    loss_fn = CompositeLoss({"l1": 1.0, "cscl": 0.2} if udair else {"l1": 1.0})
    x = torch.rand(batch, 3, size, size, device=device).contiguous(memory_format=fmt)
    y = torch.rand(batch, 3, size, size, device=device)
    kind = torch.device(device).type

    def step() -> None:
        ctx = torch.autocast(kind, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        with ctx:
            if udair:
                out = model.forward_features(x)
                inputs = LossInputs(
                    out.image.float(), y, out.feature, out.logit_scale, batch // 2, 2
                )
            else:
                inputs = LossInputs(model(x).float(), y)
            loss, _ = loss_fn(inputs)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()
    if kind == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    cpu = []
    for _ in range(steps):
        begin = time.process_time()
        step()
        cpu.append(time.process_time() - begin)
    if kind == "cuda":
        torch.cuda.synchronize()
    return steps / (time.perf_counter() - start), statistics.median(cpu)


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs (VALUE in YAML: ``16``, ``[1,1,4,8]``) as constructor overrides."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set {item!r}: expected KEY=VALUE")
        parsed = yaml.safe_load(value)
        out[key] = tuple(parsed) if isinstance(parsed, list) else parsed
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["udair-tiny", "udair-small"])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    parser.add_argument(
        "--batches", type=int, nargs="+", help="several batch sizes (overrides --batch)"
    )
    parser.add_argument("--bf16-only", action="store_true", help="skip the fp32 variants")
    parser.add_argument(
        "--channels-last-only", action="store_true", help="skip the contiguous variants"
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="override a constructor argument of every model (repeatable; YAML values)",
    )  # fmt: skip
    args = parser.parse_args()
    overrides = parse_overrides(args.set)
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{args.threads} threads, load {load:.1f}, torch {torch.__version__}; "
        f"{args.size}² patches, {args.steps} timed steps, device {args.device}"
        + (f"; overrides {overrides}" if overrides else "")
    )
    print(
        f"{'model':16s} {'batch':>5s} {'precision':10s} {'layout':14s} steps/s  images/s  "
        "cpu-s/step"
    )
    for name in args.models:
        for batch in args.batches or [args.batch]:
            for bf16 in (True,) if args.bf16_only else (False, True):
                for cl in (True,) if args.channels_last_only else (False, True):
                    sps, cpu = measure(
                        name, batch, args.size, args.steps, bf16, cl, args.device, overrides
                    )
                    layout = "channels_last" if cl else "contiguous"
                    prec = "bf16-auto" if bf16 else "fp32"
                    print(
                        f"{name:16s} {batch:5d} {prec:10s} {layout:14s} {sps:7.3f}  "
                        f"{sps * batch:7.2f}  {cpu:9.3f}",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
