"""Small shared test helpers (importable from any test: ``pythonpath = ["tests"]``)."""

from __future__ import annotations

import importlib.util
import struct
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
from PIL import Image
from skimage import data

from aioir.data.eet import EET_MAGIC
from aioir.degradations import TIERS

#: the centre of each severity tier (mild, moderate, severe)
TIER_MIDPOINTS = [0.5 * (lo + hi) for lo, hi in TIERS.values()]


def astronaut_u8(size: int = 48) -> np.ndarray:
    """scikit-image's astronaut, bicubic-resized to ``size``², uint8 H×W×3."""
    return np.asarray(Image.fromarray(data.astronaut()).resize((size, size), Image.BICUBIC)).copy()


def astronaut_batch(size: int = 48) -> torch.Tensor:
    """A 2×3×size×size float batch in [0, 1]: the astronaut and its mirror image."""
    x = torch.from_numpy(astronaut_u8(size)).permute(2, 0, 1).float() / 255.0
    return torch.stack([x, x.flip(-1)])


def psnr_db(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR (data range 1) of the whole batch's pooled MSE."""
    return float(-10.0 * torch.log10(((a - b) ** 2).mean()))


def eet_bytes(entries: dict[str, bytes], flags: int = 0) -> bytes:
    """A minimal Eet file (no dictionary) holding ``entries`` stored plain (or with ``flags``)."""
    header = 12 + 24 * len(entries)
    blobs, directory = b"", b""
    for name, payload in entries.items():
        raw = name.encode() + b"\0"
        name_offset = header + len(blobs)
        blobs += raw
        data_offset = header + len(blobs)
        blobs += payload
        directory += struct.pack(
            ">6I", data_offset, len(payload), len(payload), name_offset, len(raw), flags
        )
    return struct.pack(">III", EET_MAGIC, len(entries), 0) + directory + blobs


def make_corpus(
    root: Path, n_train: int = 3, n_val: int = 2, size: tuple[int, int] = (72, 88)
) -> Path:
    """A tiny clean-photo corpus under ``root``: ``train/`` and ``val/`` folders of smooth
    seeded images (what ``data.root`` of a synthetic-data config reads)."""
    rng = np.random.default_rng(0)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w] / 30.0
    for split, n in (("train", n_train), ("val", n_val)):
        (root / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            k = i + (10 if split == "val" else 0)
            img = np.stack(
                [
                    0.5 + 0.35 * np.sin(xx * (1 + 0.3 * k) + c) * np.cos(yy * (1 + 0.2 * c) + k)
                    for c in range(3)
                ],
                -1,
            )
            img = img + rng.normal(0, 0.01, img.shape)
            Image.fromarray((img.clip(0, 1) * 255).astype(np.uint8)).save(
                root / split / f"{split}{i}.png"
            )
    return root


def load_benchmark(name: str) -> ModuleType:
    """Import ``benchmarks/<name>.py`` (scripts, not a package) as a module."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # as an import does (dataclasses look their module up there)
    spec.loader.exec_module(module)
    return module


def tiny_filter_bank_fit_config(corpus: Path, base: Path, **filter_bank: object) -> dict:
    """A tiny filter-bank fit's raw config (``aioir fit-filter-bank``) of the network saved at
    ``base`` on ``corpus``: noise and blur, 4 gate crops per task, no validation;
    ``filter_bank`` adds or replaces options of its ``filter_bank`` section."""
    return {
        "model": {"name": str(base)},
        "data": {
            "kind": "synthetic", "root": str(corpus), "tasks": ["noise", "blur"],
            "patch_size": 32, "samples_per_task": 2, "items_per_task": 12, "epoch_length": 3,
        },
        "filter_bank": {
            "taps": 5, "severity_bins": 2, "patches": 4, "patch_size": 24,
            "gate_items_per_task": 4, "gate_patch_size": 32, "gate_epochs": 20, **filter_bank,
        },
        "validation": {"enabled": False},
        "runtime": {"num_threads": 1, "progress_bar": False},
        "seed": 7,
    }  # fmt: skip


def assert_reloads_by_name(name: str, folder: Path) -> None:
    """A registered model with random non-zero weights, saved to ``folder`` and loaded back by
    its path, restores as the original did."""
    import aioir
    from aioir.models import save_pretrained

    torch.manual_seed(0)
    model = aioir.load_model(name)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.1)
    save_pretrained(model, folder)
    again = aioir.load_model(str(folder))
    x = torch.rand(1, 3, 9, 9)
    with torch.no_grad():
        assert torch.allclose(again(x), model(x))


def hinting_filter_bank(haze: float = 0.95, read: str = "haze"):
    """A tiny routed filter-bank model with a told gate whose classifier reads every input as
    ``read`` (haze, rain or noise) with probability ``haze`` (the rest clean), whose blind
    gates return the input and whose told gate picks the network's output: a model that holds
    back on what it read, so it hints (``suggested_task``)."""
    from aioir.models import FilterBankRestorer, create_model

    classes = ["noise", "rain", "haze", "clean"]
    torch.manual_seed(0)
    model = FilterBankRestorer(
        create_model("udair-tiny"), filters=2, taps=3, routed_gate=True, told_gate=True,
        classifier={"classes": classes, "widths": [4], "hidden": 4},
    )  # fmt: skip
    head, j = model.filter_bank, model.filter_bank.num_candidates
    p = torch.full((len(classes),), 1e-4)
    p[classes.index(read)] = haze
    p[-1] = 1.0 - float(p[:-1].sum())
    with torch.no_grad():
        head.classifier.head[-1].weight.zero_()
        head.classifier.head[-1].bias.copy_(p.log())
        for gate, pick in ((head.gate, 1), (head.told_gate.gate, 0)):
            gate[-1].weight.zero_()
            gate[-1].bias.copy_(torch.eye(j)[pick].repeat(len(classes)) * 50.0)
    return model.eval()
