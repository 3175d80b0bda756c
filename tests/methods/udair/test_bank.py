"""The source bank file: format 2 with statistics, format-1 files, float16 storage, writing."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from aioir.errors import CheckpointError, ConfigError, ImageWriteError
from aioir.methods.udair.bank import (
    BANK_FORMAT_VERSION,
    SourceBank,
    load_source_bank,
    save_source_bank,
)

REPO = Path(__file__).parents[3]
TASKS = ["noise", "haze"]


def _bank(statistics: bool = True) -> SourceBank:
    g = torch.Generator().manual_seed(0)
    shapes = {"g4": (8, 2, 2), "g3": (4, 4, 4), "g2": (2, 8, 8)}
    levels = {lv: 0.1 * torch.randn(2, *s, generator=g) for lv, s in shapes.items()}
    bank = SourceBank(levels, list(TASKS), {"mode": "final_pass", "patch_size": 16})
    if statistics:
        bank.means = {lv: torch.randn(2, s[0], generator=g) for lv, s in shapes.items()}
        covs = {}
        for lv, s in shapes.items():
            a = torch.randn(2, s[0], s[0], generator=g)
            covs[lv] = 1e-3 * a @ a.transpose(1, 2)  # small values, as real covariances
        bank.covs = covs
        bank.within = {lv: 0.5 * c for lv, c in covs.items()}
    return bank


def _same(a: SourceBank, b: SourceBank, **tol) -> None:
    for lv in ("g4", "g3", "g2"):
        torch.testing.assert_close(a.levels[lv], b.levels[lv], **tol)
        if a.has_statistics:
            for mine, theirs in ((a.means, b.means), (a.covs, b.covs), (a.within, b.within)):
                torch.testing.assert_close(mine[lv], theirs[lv], **tol)


def _data_bytes(path: Path) -> int:
    """Tensor bytes of a safetensors file (size − 8 − header length)."""
    header = int.from_bytes(path.read_bytes()[:8], "little")
    return path.stat().st_size - 8 - header


def test_format_2_round_trip_with_statistics(tmp_path):
    bank = _bank()
    path = bank.save(tmp_path / "bank.safetensors")
    loaded = SourceBank.load(tmp_path)  # a folder finds bank.safetensors
    assert loaded.has_statistics and loaded.task_names == TASKS
    _same(bank, loaded, rtol=0, atol=0)
    assert loaded.metadata["format_version"] == BANK_FORMAT_VERSION == 2
    assert loaded.metadata["dtype"] == "float32" and loaded.metadata["patch_size"] == 16
    levels, meta = load_source_bank(path)
    assert set(levels) == {"g4", "g3", "g2"} and meta["task_names"] == TASKS
    # usual permissions (safetensors' own writer makes 0600 files), no temporary file left
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["bank.safetensors"]


def test_a_format_1_bank_loads_without_statistics(tmp_path):
    old = _bank(statistics=False)
    meta = {"task_names": TASKS, "mode": "final_pass", "patch_size": 16, "count": [4, 4]}
    save_file(dict(old.levels), str(tmp_path / "bank.safetensors"),
              metadata={"aioir_source_bank": json.dumps(meta)})  # fmt: skip
    loaded = SourceBank.load(tmp_path / "bank.safetensors")
    assert not loaded.has_statistics and loaded.means is None and loaded.statistics() is None
    assert loaded.metadata.get("format_version") is None and loaded.task_index("haze") == 1
    _same(old, loaded, rtol=0, atol=0)


def test_the_committed_format_1_checkpoint_bank_loads():
    path = REPO / "checkpoints/udair-small-photos-h100/bank.safetensors"
    if not path.is_file():
        pytest.skip("checkpoint bank not present")
    bank = SourceBank.load(path)
    assert not bank.has_statistics and len(bank.task_names) == 7
    assert bank.levels["g3"].dtype == torch.float32 and bank.levels["g3"].shape[0] == 7


def test_float16_storage_halves_the_file_and_loads_as_float32(tmp_path):
    bank = _bank()
    full = bank.save(tmp_path / "full.safetensors")
    half = bank.save(tmp_path / "half.safetensors", dtype="float16")
    assert 2 * _data_bytes(half) == _data_bytes(full)
    loaded = SourceBank.load(half)
    assert loaded.metadata["dtype"] == "float16"
    assert all(v.dtype == torch.float32 for v in loaded.levels.values())
    assert all(v.dtype == torch.float32 for v in loaded.covs.values())  # type: ignore[union-attr]
    _same(bank, loaded, rtol=2e-3, atol=1e-7)  # float16: 11 significant bits
    # re-saving keeps the dtype it was read with, unless told otherwise
    again = loaded.save(tmp_path / "again.safetensors")
    assert SourceBank.load(again).metadata["dtype"] == "float16"
    assert again.stat().st_size == half.stat().st_size
    with pytest.raises(ConfigError, match="float16"):
        bank.save(tmp_path / "x.safetensors", dtype="int8")
    big = _bank(statistics=False)
    big.levels["g4"] = big.levels["g4"] * 1e6
    with pytest.raises(ConfigError, match="float16"):
        big.save(tmp_path / "big.safetensors", dtype="float16")


def test_overwrite_and_malformed_files(tmp_path):
    bank = _bank()
    path = bank.save(tmp_path / "bank.safetensors")
    with pytest.raises(ImageWriteError, match="exists"):
        bank.save(path, overwrite=False)
    bank.save(path)  # replaces by default (atomic rename)
    # statistics must be complete
    tensors = {**bank.levels, "mean_g4": bank.means["g4"]}  # type: ignore[index]
    meta = json.dumps({"task_names": TASKS, "format_version": 2})
    save_file(tensors, str(tmp_path / "partial.safetensors"), {"aioir_source_bank": meta})
    with pytest.raises(CheckpointError, match="malformed"):
        SourceBank.load(tmp_path / "partial.safetensors")
    newer = json.dumps({"task_names": TASKS, "format_version": BANK_FORMAT_VERSION + 1})
    save_file(dict(bank.levels), str(tmp_path / "new.safetensors"), {"aioir_source_bank": newer})
    with pytest.raises(CheckpointError, match="newer"):
        SourceBank.load(tmp_path / "new.safetensors")
    with pytest.raises(CheckpointError, match="no source bank"):
        SourceBank.load(tmp_path / "missing")
    bad = _bank()
    bad.covs["g3"] = bad.covs["g3"][:, :2]  # type: ignore[index]
    with pytest.raises(ConfigError, match="cov_g3"):
        save_source_bank(tmp_path / "b.safetensors", bad.levels, TASKS,
                         statistics=bad.statistics())  # fmt: skip
