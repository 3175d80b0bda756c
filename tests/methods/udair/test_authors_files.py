"""The authors' files: their ``source_domain_distrib.pth`` as a source bank (API and CLI), their
task names, their TTA resize and the per-column task of ``aioir evaluate``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from aioir import cli
from aioir.errors import CheckpointError, ConfigError
from aioir.io import load_image, write_image
from aioir.methods.udair.bank import AUTHORS_TASKS, SourceBank
from aioir.methods.udair.tta import pil_bicubic, udair_tta
from aioir.models import load_model
from aioir.restore import Restorer
from udair_helpers import task_images

#: udair-tiny's injected channels (dim 8): g4 = 8·dim, g3 = 4·dim, g2 = 2·dim
TINY_CHANNELS = {"distrib_4": 64, "distrib_3": 32, "distrib_2": 16}
#: the authors' map sides at their 128-px training patch (H/8, H/4, H/2)
SIDES = {"distrib_4": 16, "distrib_3": 32, "distrib_2": 64}


def authors_bank(path: Path, channels: dict[str, int] = TINY_CHANNELS, tasks: int = 5) -> Path:
    """A file of the authors' exact layout: ``torch.save`` of a dict of T×C×h×w float maps."""
    g = torch.Generator().manual_seed(5)
    data = {
        k: torch.randn(tasks, c, SIDES[k], SIDES[k], generator=g) * 0.1 for k, c in channels.items()
    }
    torch.save(data, path)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> tuple[Path, Path]:
    """(checkpoint, bank): the authors' Lightning-style checkpoint of a udair-tiny and a bank."""
    folder = tmp_path_factory.mktemp("authors")
    torch.manual_seed(3)
    model = load_model("udair-tiny")
    ckpt = folder / "UDAIR.ckpt"
    torch.save({"state_dict": {f"net.{k}": v for k, v in model.state_dict().items()}}, ckpt)
    return ckpt, authors_bank(folder / "source_domain_distrib.pth")


def test_authors_bank_loads_with_their_task_order(files):
    bank = SourceBank.load(files[1])
    assert bank.task_names == list(AUTHORS_TASKS)
    assert bank.metadata["patch_size"] == 128
    assert tuple(bank.levels["g4"].shape) == (5, 64, 16, 16)
    raw = torch.load(files[1], weights_only=True)
    assert torch.equal(bank.levels["g2"], raw["distrib_2"])
    assert bank.task_index("dehazing") == bank.task_index("haze") == 1
    assert bank.task_index("low-light") == 3
    with pytest.raises(ConfigError, match="blur"):
        bank.task_index("blur")


def test_load_model_attaches_the_authors_bank(files):
    ckpt, pth = files
    model = load_model("udair-tiny", checkpoint=ckpt, bank=pth)
    assert model.source_bank.task_names == list(AUTHORS_TASKS)
    x = task_images(1, 40, seed=4)["haze"]
    tta = udair_tta("faithful", task="dehazing", work_size=32)
    out = Restorer(model, device="cpu", tile=0, tta=tta).restore_tensor(x)
    assert out.shape == x.shape and tta.reports[0]["task"] == "haze"


def test_unreadable_or_mismatched_banks_are_checkpoint_errors(files, tmp_path):
    ckpt, _ = files
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"\x80\x04not a pickle at all")
    other = tmp_path / "other.bin"
    other.write_bytes(b"nothing here")
    keys = tmp_path / "keys.pth"
    torch.save({"distrib_4": torch.zeros(5, 64, 16, 16)}, keys)
    wide = authors_bank(tmp_path / "wide.pth", {k: 2 * c for k, c in TINY_CHANNELS.items()})
    rows = authors_bank(tmp_path / "rows.pth", tasks=4)
    for path, what in ((garbage, "readable"), (other, "readable"), (keys, "distrib_3"),
                       (wide, "channels"), (rows, "shape")):  # fmt: skip
        with pytest.raises(CheckpointError, match=what) as info:
            load_model("udair-tiny", checkpoint=ckpt, bank=path)
        assert "\n" not in str(info.value) and str(path) in str(info.value)
    with pytest.raises(ConfigError, match="UDAIR"):
        load_model("restormer-tiny", bank=wide)


def test_restore_cli_with_checkpoint_and_authors_bank(files, tmp_path, capsys):
    ckpt, pth = files
    folder = tmp_path / "in"
    write_image(folder / "a.png", task_images(1, 36, seed=6)["haze"][0].permute(1, 2, 0).numpy())
    base = ["restore", str(folder), "--model", "udair-tiny", "--checkpoint", str(ckpt),
            "--device", "cpu", "--tile", "0", "-q"]  # fmt: skip
    code = cli.main([*base, "-o", str(tmp_path / "out"), "--bank", str(pth), "--tta",
                     "--tta-mode", "faithful", "--tta-task", "dehazing"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert load_image(tmp_path / "out" / "a.png").rgb.shape == (36, 36, 3)
    # the faithful mode without a task fails before any image, as a usage error
    code = cli.main(
        [*base, "-o", str(tmp_path / "o2"), "--bank", str(pth), "--tta-mode", "faithful"]
    )
    assert code == 2 and "--tta-task" in capsys.readouterr().err
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"PK\x03\x04broken zip")
    code = cli.main([*base, "-o", str(tmp_path / "o3"), "--bank", str(bad), "--tta"])
    err = capsys.readouterr().err
    assert code == 2 and "bad.pth" in err and len(err.strip().splitlines()) == 1


def test_pil_bicubic_is_the_authors_resize():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 50, 70, generator=g)
    array = (x[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    want = np.asarray(Image.fromarray(array).resize((32, 32), Image.Resampling.BICUBIC))
    got = (pil_bicubic(x, (32, 32))[0].permute(1, 2, 0) * 255).round().numpy().astype(np.uint8)
    assert np.array_equal(got, want)
    # antialiased when shrinking: a one-pixel checkerboard becomes flat grey
    board = (torch.arange(64)[:, None] + torch.arange(64)[None, :]) % 2
    flat = pil_bicubic(board.float().expand(1, 3, 64, 64), (16, 16))
    assert (flat - 0.5).abs().max() < 0.05


def test_faithful_output_size_option(files):
    ckpt, pth = files
    model = load_model("udair-tiny", checkpoint=ckpt, bank=pth)
    x = task_images(1, 40, seed=4)["noise"]
    tta = udair_tta("faithful", task="denoising", work_size=32, output="work")
    out = Restorer(model, device="cpu", tile=0, tta=tta).restore_tensor(x)
    assert out.shape == (1, 3, 32, 32)  # what the authors' test.py saves
    with pytest.raises(ConfigError, match="output"):
        udair_tta("faithful", task="noise", output="native")


def test_evaluate_gives_faithful_tta_each_column_task(files):
    from aioir.evaluate.benchmarks import Case
    from aioir.evaluate.methods import load_method

    ckpt, pth = files
    method = load_method(
        "udair-tiny",
        ckpt,
        device="cpu",
        tta={"mode": "faithful", "work_size": 32},
        artifacts={"bank": pth},
    )
    x = task_images(1, 36, seed=2)
    for task in ("lowlight", "haze"):
        case = Case("set", "a.png", task, x[task][0], None)
        out, _ = method.restore(x[task][0], case)
        assert out.shape == (3, 36, 36)
    adapters = method.restorer._task_adapters
    assert {t: a.reports[0]["task"] for t, a in adapters.items()} == {
        "lowlight": "lowlight",
        "haze": "haze",
    }
    assert method.settings()["bank"] == str(pth)
