"""CPU inference speed of the paper presets: aioir as shipped vs the authors' computation.

The authors' code cannot be vendored here (no or non-commercial licences), so the reference is
*emulated* on the same weights, doing the work their forward does and ours skips or does
differently (read from their code; ``docs/methods/*.md``, "Reference-code quirks"):

* LayerNorm through ``rearrange(b c h w -> b (h w) c)``, mean/var over the last axis, and back
  (two layout copies per norm) — ours runs ``F.layer_norm`` on a channels-last view;
* contiguous (NCHW) memory and ``torch.no_grad`` (their test scripts) — ours uses channels-last
  and ``torch.inference_mode``;
* UDAIR only: the VQ-VAE image decoder is run and its output discarded, and the contrastive
  pooling of the forward pass is computed — ours skips both;
* sparse prompts (CPL) only: the prompt is the weighted sum over all ``N`` bank entries of a
  bank repeated per image (``prompt_param.repeat(B, …)``), zeros included — ours gathers the
  ``k`` selected entries.

Both variants produce the same image (checked to 1e-4 before timing). Usage::

    python benchmarks/reference_speed.py --models restormer promptir udair --size 256 --repeats 3

Each configuration runs in its own subprocess; the median of ``--repeats`` forwards after one
warm-up is reported, with the thread count.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aioir.nn.norm import WithBiasLayerNorm
    from aioir.nn.prompts import PromptGenBlock


def _reference_layernorm(module: WithBiasLayerNorm) -> None:
    """Replace ``WithBiasLayerNorm.forward`` by the authors' to_3d / LayerNorm / to_4d."""
    import torch

    def forward(x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        t = x.flatten(2).transpose(1, 2).contiguous()  # b (h w) c, as einops.rearrange copies
        mu = t.mean(-1, keepdim=True)
        var = t.var(-1, keepdim=True, unbiased=False)
        t = (t - mu) / torch.sqrt(var + module.eps) * module.weight + module.bias
        return t.transpose(1, 2).reshape(b, c, h, w).contiguous()

    module.forward = forward


def _reference_prompt(module: PromptGenBlock) -> None:
    """Replace a sparse ``PromptGenBlock.forward`` by the authors' dense sum over the bank."""
    import torch
    import torch.nn.functional as F

    def forward(x: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        w = module.route(x) if weights is None else weights
        bank = module.prompt_param.unsqueeze(0).repeat(x.shape[0], 1, 1, 1, 1, 1).squeeze(1)
        prompt = (w[:, :, None, None, None] * bank).sum(dim=1)
        prompt = F.interpolate(prompt, x.shape[-2:], mode="bilinear", align_corners=False)
        return module.conv3x3(prompt)

    module.forward = forward


def measure(name: str, size: int, variant: str, repeats: int) -> dict:
    """Time one (model, variant) in this process."""
    import torch

    import aioir
    from aioir.methods.udair.model import UDAIR
    from aioir.nn.memory_format import to_channels_last
    from aioir.nn.norm import WithBiasLayerNorm
    from aioir.nn.prompts import PromptGenBlock

    torch.manual_seed(0)
    model = aioir.load_model(name).eval()
    x = torch.rand(1, 3, size, size)

    if variant == "reference":
        for m in model.modules():
            if isinstance(m, WithBiasLayerNorm):
                _reference_layernorm(m)
            if isinstance(m, PromptGenBlock) and m.router.active is not None:
                _reference_prompt(m)

        if isinstance(model, UDAIR):
            vq = model.dam.codebook
            encode = vq.encode

            def encode_and_decode(inp: torch.Tensor):
                codes = encode(inp)
                vq.decode(codes[0], codes[1])  # the authors run the image decoder, then discard it
                return codes

            vq.encode = encode_and_decode

        def run(inp: torch.Tensor) -> torch.Tensor:
            if isinstance(model, UDAIR):
                return model.forward_features(inp).image  # + the contrastive pooling
            return model(inp)

        context = torch.no_grad
    else:
        model = to_channels_last(model)
        x = x.contiguous(memory_format=torch.channels_last)
        run = model
        context = torch.inference_mode

    with context():
        run(x)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            out = run(x)
            times.append(time.perf_counter() - start)
    return {
        "model": name,
        "variant": variant,
        "ms": 1000 * statistics.median(times),
        "threads": torch.get_num_threads(),
        "checksum": float(out.double().mean()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["restormer", "promptir", "udair"])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        name, variant = args.child.split("|")
        print(json.dumps(measure(name, args.size, variant, args.repeats)))
        return 0

    print("| model | authors' computation (ms) | aioir (ms) | speed-up | threads |")
    print("|---|---:|---:|---:|---:|")
    for name in args.models:
        rows = {}
        for variant in ("reference", "aioir"):
            cmd = [sys.executable, __file__, "--child", f"{name}|{variant}",
                   "--size", str(args.size), "--repeats", str(args.repeats)]  # fmt: skip
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode != 0:
                print(f"{name} {variant}: failed\n{out.stderr[-2000:]}", file=sys.stderr)
                break
            rows[variant] = json.loads(out.stdout.strip().splitlines()[-1])
        if len(rows) < 2:
            continue
        ref, ours = rows["reference"], rows["aioir"]
        if abs(ref["checksum"] - ours["checksum"]) > 1e-4:
            print(
                f"{name}: outputs differ ({ref['checksum']} vs {ours['checksum']})", file=sys.stderr
            )
            return 1
        print(
            f"| {name} | {ref['ms']:.0f} | {ours['ms']:.0f} | {ref['ms'] / ours['ms']:.2f}× | "
            f"{ours['threads']} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
