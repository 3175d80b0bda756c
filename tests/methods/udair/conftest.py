"""A tiny saved UDAIR whose source bank carries the format-2 row statistics."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from aioir.methods.udair.bank import BANK_FILE
from aioir.methods.udair.bank_accumulation import compute_source_bank
from aioir.models import load_model
from udair_helpers import TASKS, build_tiny_udair, task_images


def build_tiny_udair_with_statistics(folder: Path, patch: int = 32, widen: float = 0.0) -> Path:
    """:func:`build_tiny_udair` with a bank that has statistics (same crops as its mean maps).

    ``widen`` adds ``widen × mean variance × I`` to the stored covariances, so the untrained
    model's maps are clearly away from the reference (an adaptation target).
    """
    build_tiny_udair(folder, patch)
    model = load_model(folder)
    images = task_images(4, patch, seed=1)
    batches = [
        {"input": images[t], "task_id": torch.full((4,), i, dtype=torch.int64)}
        for i, t in enumerate(TASKS)
    ]
    bank = compute_source_bank(model, batches, TASKS, metadata={"patch_size": patch})
    if widen:
        for stats in (bank.covs, bank.within):
            for level, cov in stats.items():
                eye = torch.eye(cov.shape[-1])
                var = torch.diagonal(cov, dim1=1, dim2=2).mean(1)[:, None, None]
                stats[level] = cov + widen * var * eye
    bank.save(folder / BANK_FILE)
    return folder


@pytest.fixture(scope="module")
def stats_model_dir(tmp_path_factory) -> Path:
    return build_tiny_udair_with_statistics(tmp_path_factory.mktemp("udair") / "stats", widen=4.0)


@pytest.fixture(scope="module")
def spread_model_dir(tmp_path_factory) -> Path:
    """A tiny saved UDAIR whose bank's task clusters are spread apart (adaptation targets)."""
    return build_tiny_udair(tmp_path_factory.mktemp("udair") / "tiny", spread=1.0)
