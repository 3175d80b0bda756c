"""``aioir adapt`` and ``aioir restore --tta`` end to end with a tiny saved UDAIR + bank."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from aioir import cli
from aioir.io import load_image, write_image
from aioir.models import load_model, read_pretrained_config
from udair_helpers import task_images


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("images")
    batch = task_images(2, 36, seed=31)
    for task in ("noise", "haze"):
        for b in range(2):
            write_image(folder / f"{task}{b}.png", batch[task][b].permute(1, 2, 0).numpy())
    return folder


def test_restore_tta_end_to_end(spread_model_dir, images, tmp_path, capsys):
    code = cli.main(
        ["restore", str(images), "-o", str(tmp_path / "out"), "--model", str(spread_model_dir),
         "--tta", "--device", "cpu", "--tile", "0", "-q"]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    plain = tmp_path / "plain"
    assert cli.main(["restore", str(images), "-o", str(plain), "--model", str(spread_model_dir), "-q",
                     "--device", "cpu", "--tile", "0"]) == 0  # fmt: skip
    for name in ("noise0.png", "haze1.png"):
        out = load_image(tmp_path / "out" / name).rgb
        assert out.shape == (36, 36, 3)
        # blind default TTA starts from the identity and changes the result only slightly
        assert np.abs(out - load_image(plain / name).rgb).max() < 0.2


def test_adapt_writes_a_model_that_restore_uses(spread_model_dir, images, tmp_path, capsys):
    out = tmp_path / "adapted"
    argv = ["adapt", "--model", str(spread_model_dir), "--target", str(images), "-o", str(out),
            "--steps", "6", "--lr", "0.01", "--batch-size", "2", "--device", "cpu", "-q"]  # fmt: skip
    assert cli.main(argv) == 0, capsys.readouterr().err
    config = read_pretrained_config(out)
    assert config["metadata"]["adapters_enabled"] is True
    assert (out / "bank.safetensors").is_file()
    assert config["metadata"]["domain_adaptation"]["images"] == 4
    # refuses to overwrite without --overwrite (one-line error, exit 1)
    assert cli.main(argv) == 1
    assert "exists" in capsys.readouterr().err
    assert cli.main([*argv, "--overwrite"]) == 0

    adapted = load_model(out)
    adapted.set_adapters(bool(adapted.aioir_metadata.get("adapters_enabled")))
    x = torch.rand(1, 3, 36, 36, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert (adapted(x) - load_model(spread_model_dir)(x)).abs().max() > 1e-5
    code = cli.main(["restore", str(images), "-o", str(tmp_path / "r"), "--model", str(out),
                     "--device", "cpu", "-q"])  # fmt: skip
    assert code == 0


def test_adapt_usage_errors(spread_model_dir, images, tmp_path, capsys):
    base = [
        "adapt",
        "--model",
        str(spread_model_dir),
        "--target",
        str(images),
        "-o",
        str(tmp_path / "x"),
    ]
    assert cli.main([*base, "--task", "snow", "-q", "--steps", "1"]) == 1
    assert "snow" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        cli.main([*base, "--steps", "0"])
    assert exc.value.code == 2


def test_restore_tta_mode_and_task_options(spread_model_dir, images, tmp_path, capsys):
    out = tmp_path / "faithful"
    argv = ["restore", str(images / "noise0.png"), "-o", str(out), "--model", str(spread_model_dir),
            "--device", "cpu", "--tile", "0", "-q", "--tta-mode", "faithful", "--tta-task", "noise"]  # fmt: skip
    assert cli.main(argv) == 0, capsys.readouterr().err
    assert load_image(out / "noise0.png").rgb.shape == (36, 36, 3)
    # an unknown reference task is a one-line error naming it
    bad = [*argv[:-1], "no-such-task", "--overwrite"]
    assert cli.main(bad) != 0
    err = capsys.readouterr().err
    assert "no-such-task" in err and "Traceback" not in err


def test_adapt_works_on_a_network_inside_a_wrapper(spread_model_dir, images, tmp_path, capsys):
    # the shipped default model is a UDAIR inside a filter-bank wrapper: adapt acts on the network
    from aioir.models import FilterBankRestorer, save_model, unwrap

    base = load_model(spread_model_dir)
    wrapped = tmp_path / "wrapped"
    save_model(FilterBankRestorer(base, filters=2, taps=3), wrapped)
    out = tmp_path / "adapted"
    argv = ["adapt", "--model", str(wrapped), "--target", str(images), "-o", str(out),
            "--steps", "3", "--batch-size", "2", "--device", "cpu", "-q"]  # fmt: skip
    assert cli.main(argv) == 0, capsys.readouterr().err
    adapted = load_model(out)
    assert isinstance(adapted, FilterBankRestorer)
    network = unwrap(adapted)
    assert network.adapters_enabled and network.source_bank is not None
    assert read_pretrained_config(out)["wrappers"][0]["name"] == "filter_bank"
