"""Restore a large photo on the CPU: wall time and peak memory (max RSS) of ``restore_file``.

Usage::

    python benchmarks/restore_large.py --model udair-tiny --allow-untrained       # 24 MP
    python benchmarks/restore_large.py --model runs/udair.safetensors --megapixels 12 --tile 512
    python benchmarks/restore_large.py --model udair --allow-untrained --bytes-per-pixel

The input is a shipped sample photo up-scaled (bicubic) to the requested size, 3:2, saved as a
JPEG in a temporary folder (``--synthetic`` uses smooth random colour fields instead). The
restoration runs in a fresh child process, so the reported peak RSS is that of loading the
model, decoding the photo, restoring it (tiles chosen by the memory heuristic unless ``--tile``)
and writing the PNG: what ``aioir restore`` would use. The activations stay within the tiling
budget: half the free memory, at most 8 GiB on the CPU (``docs/decisions.md``, "Restoring").

``--bytes-per-pixel`` instead measures the model's activation memory per input pixel
(one-pass forwards at two sizes in fresh processes, difference of max RSS over difference of
pixels): the number to declare as the model's ``inference_bytes_per_pixel``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _peak_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB


def make_photo(path: Path, megapixels: float, synthetic: bool, seed: int = 0) -> tuple[int, int]:
    """Write a ``megapixels`` 3:2 JPEG to ``path``; returns (width, height)."""
    import numpy as np
    from PIL import Image

    height = round(math.sqrt(megapixels * 1e6 / 1.5))
    width = round(height * 1.5)
    if synthetic:
        rng = np.random.default_rng(seed)
        small = (rng.random((24, 36, 3)) * 255).astype(np.uint8)
        image = Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC)
    else:
        from aioir.data.samples import sample_images

        with Image.open(sample_images()[0]) as im:
            image = im.convert("RGB").resize((width, height), Image.Resampling.BICUBIC)
    image.save(path, quality=92)
    return width, height


def _child_restore(args: argparse.Namespace) -> dict:
    start = time.perf_counter()
    import torch

    from aioir.restore import Restorer

    if args.threads:
        torch.set_num_threads(args.threads)
    restorer = Restorer(
        args.model,
        checkpoint=args.checkpoint,
        device=args.device,
        tile=args.tile,
        tile_overlap=args.tile_overlap,
        tile_batch_size=args.tile_batch_size or None,
        precision=args.precision,
        allow_untrained=args.allow_untrained,
    )
    loaded = time.perf_counter()
    from aioir.io import load_image

    data = load_image(args.input)
    decoded = time.perf_counter()
    h, w = data.rgb.shape[:2]
    tile = restorer.tile_for(h, w)
    # exactly what `aioir restore` does per file: restore, quantize, write atomically
    restorer.restore_file(args.input, args.output, overwrite=True, data=data)
    done = time.perf_counter()
    return {
        "model": str(args.model),
        "size": f"{w}x{h}",
        "megapixels": round(w * h / 1e6, 2),
        "tile": tile,
        "tile_overlap": args.tile_overlap,
        "tile_batch_size": restorer.tile_batch_size,
        "precision": str(restorer.dtype).removeprefix("torch."),
        "threads": torch.get_num_threads(),
        "load_model_s": round(loaded - start, 2),
        "decode_s": round(decoded - loaded, 2),
        "restore_and_write_s": round(done - decoded, 2),
        "total_s": round(done - start, 2),
        "peak_rss_mib": round(_peak_rss_bytes() / 2**20),
    }


def _child_forward(args: argparse.Namespace) -> dict:
    import torch

    from aioir.restore import Restorer

    restorer = Restorer(args.model, checkpoint=args.checkpoint, device="cpu", tile=0,
                        precision=args.precision, allow_untrained=args.allow_untrained)  # fmt: skip
    x = torch.rand(1, 3, args.side, args.side)
    base = _peak_rss_bytes()
    restorer.restore_tensor(x)
    return {"side": args.side, "base": base, "peak": _peak_rss_bytes()}


def _run_child(extra: list[str]) -> dict:
    cmd = [sys.executable, __file__, *extra]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"child failed with status {done.returncode}: {' '.join(cmd)}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _common(args: argparse.Namespace) -> list[str]:
    extra = ["--model", str(args.model), "--precision", args.precision]
    if args.checkpoint:
        extra += ["--checkpoint", str(args.checkpoint)]
    if args.allow_untrained:
        extra.append("--allow-untrained")
    return extra


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="default", help="model name or saved-model path")
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--allow-untrained", action="store_true")
    parser.add_argument("--megapixels", type=float, default=24.0)
    parser.add_argument("--synthetic", action="store_true", help="random colour fields")
    parser.add_argument("--tile", type=int, default=None, help="default: memory heuristic")
    parser.add_argument("--tile-overlap", type=int, default=32)
    parser.add_argument("--tile-batch-size", type=int, default=0, help="0: Restorer default")
    parser.add_argument("--precision", default="fp32", choices=("auto", "fp32", "bf16", "fp16"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--keep", type=Path, default=None, help="keep input/output here")
    parser.add_argument("--bytes-per-pixel", action="store_true", help="measure activation B/px")
    parser.add_argument("--sides", type=int, nargs=2, default=(256, 512), help="for B/px")
    # internal: the measuring child processes
    parser.add_argument("--child", choices=("restore", "forward"), help=argparse.SUPPRESS)
    parser.add_argument("--input", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    parser.add_argument("--side", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child == "restore":
        print(json.dumps(_child_restore(args)))
        return 0
    if args.child == "forward":
        print(json.dumps(_child_forward(args)))
        return 0

    if args.bytes_per_pixel:
        small, large = (_run_child(["--child", "forward", "--side", str(s), *_common(args)])
                        for s in args.sides)  # fmt: skip
        growth = (large["peak"] - large["base"]) - (small["peak"] - small["base"])
        bpp = growth / (args.sides[1] ** 2 - args.sides[0] ** 2)
        print(json.dumps({"model": args.model, "precision": args.precision,
                          "sides": list(args.sides), "bytes_per_pixel": round(bpp)}))  # fmt: skip
        return 0

    folder = args.keep or Path(tempfile.mkdtemp(prefix="aioir-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    photo = folder / "large.jpg"
    t0 = time.perf_counter()
    width, height = make_photo(photo, args.megapixels, args.synthetic)
    print(f"input {photo} {width}x{height} written in {time.perf_counter() - t0:.1f} s",
          file=sys.stderr)  # fmt: skip
    extra = ["--child", "restore", "--input", str(photo), "--output", str(folder / "large.png"),
             "--device", args.device, "--tile-overlap", str(args.tile_overlap),
             "--tile-batch-size", str(args.tile_batch_size), "--threads", str(args.threads),
             *_common(args)]  # fmt: skip
    if args.tile is not None:
        extra += ["--tile", str(args.tile)]
    result = _run_child(extra)
    result["machine"] = f"{platform.machine()} {os.cpu_count()} CPUs, {platform.system()}"
    print(json.dumps(result))
    if args.keep is None:
        for p in folder.iterdir():
            p.unlink()
        folder.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
