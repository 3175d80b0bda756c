"""``aioir fit-filter-bank``: the shipped config end to end on a tiny corpus, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

from aioir.cli import main
from helpers import astronaut_u8
from udair_helpers import build_tiny_udair

REPO = Path(__file__).parents[2]
CONFIG = REPO / "configs/udair/filter-bank.yaml"


def _corpus(root: Path) -> Path:
    from PIL import Image

    for split, sides in (("train", (64, 80)), ("val", (72,))):
        (root / split).mkdir(parents=True)
        for i, side in enumerate(sides):
            Image.fromarray(astronaut_u8(side)).save(root / split / f"p{i}.png")
    return root


def test_fit_filter_bank_command_writes_a_wrapped_model(tmp_path, capsys):
    base = build_tiny_udair(tmp_path / "base")
    small = [
        f"model.name={base}", f"data.root={_corpus(tmp_path / 'photos')}", "data.num_workers=0",
        "data.val_items_per_task=1", "data.val_size=32", "filter_bank.taps=5",
        "filter_bank.severity_bins=1", "filter_bank.patches=2", "filter_bank.patch_size=24",
        "filter_bank.gate_items_per_task=1", "filter_bank.gate_patch_size=32",
        "filter_bank.gate_epochs=5", "runtime.num_threads=1",
    ]  # fmt: skip
    out = tmp_path / "v3"
    argv = ["fit-filter-bank", "--config", str(CONFIG), "--output", str(out), "--set", *small]
    assert main(argv) == 0
    summary = capsys.readouterr().err.strip().splitlines()[-1]
    assert summary.startswith("aioir fit-filter-bank: 3 filters, gate on 7 crops; val PSNR")
    config = json.loads((out / "config.json").read_text())
    assert config["wrappers"][0] == {"name": "filter_bank", "filters": 3, "taps": 5, "hidden": 64}
    assert (out / "bank.safetensors").is_file()
    # the output is not replaced without --overwrite; a bad key is one line, exit status 1
    assert main(argv) == 1
    assert (
        capsys.readouterr().err.strip()
        == f"aioir: error: {out}: exists; pass --overwrite to replace it"
    )
    assert main([*argv, "filter_bank.tapz=5", "--overwrite"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("aioir: error: ") and "unknown key 'filter_bank.tapz'" in err
    assert len(err.splitlines()) == 1
    assert main([*argv, "--overwrite", "--quiet"]) == 0
    assert capsys.readouterr().err == ""
