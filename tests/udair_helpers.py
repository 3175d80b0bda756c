"""A tiny saved UDAIR with a source bank, and clearly different per-task inputs (TTA tests)."""

from __future__ import annotations

from pathlib import Path

import torch

from aioir.methods.udair.bank import BANK_FILE, SourceBank
from aioir.models import load_model, save_pretrained

TASKS = ["noise", "haze", "lowlight"]


def task_images(n: int, side: int, seed: int) -> dict[str, torch.Tensor]:
    """Clearly different inputs per task: noisy, bright flat veil, dark."""
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(n, 3, side, side, generator=g) * 0.3 + 0.35
    smooth = torch.nn.functional.avg_pool2d(base, 5, 1, 2, count_include_pad=False)
    return {
        "noise": (smooth + 0.25 * torch.randn(n, 3, side, side, generator=g)).clamp(0, 1),
        "haze": smooth * 0.3 + 0.65,
        "lowlight": smooth * 0.08,
    }


def build_tiny_udair(
    folder: Path, patch: int = 32, spread: float = 0.0, name: str = "udair-tiny"
) -> Path:
    """``udair-tiny`` (or the UDAIR preset ``name``) with a final-pass source bank over three
    synthetic tasks, saved.

    ``spread`` adds seeded spatial variation (× each entry's std) to the bank, so that the
    untrained model's nearly flat maps are far from it (a clear adaptation target).
    """
    from aioir.methods.udair.bank_accumulation import compute_final_pass

    torch.manual_seed(0)
    model = load_model(name)
    images = task_images(4, patch, seed=1)
    batches = [
        {"input": images[t], "task_id": torch.full((4,), i, dtype=torch.int64)}
        for i, t in enumerate(TASKS)
    ]
    bank, _ = compute_final_pass(model, batches, TASKS)
    if spread:
        g = torch.Generator().manual_seed(2)
        bank = {
            k: v + spread * v.std() * torch.randn(v.shape, generator=g) for k, v in bank.items()
        }
    save_pretrained(model, folder, {"source_bank": BANK_FILE, "task_names": TASKS})
    SourceBank(bank, TASKS, {"patch_size": patch, "mode": "final_pass"}).save(folder / BANK_FILE)
    return folder
