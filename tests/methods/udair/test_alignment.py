"""Codebook-alignment domain adaptation (``aioir adapt --method codebook``): the alignment loss
falls, the outputs change, source restoration is kept, the saved model loads and restores."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from aioir import cli
from aioir.errors import ConfigError
from aioir.io import write_image
from aioir.methods.udair.adapt import save_adapted
from aioir.methods.udair.alignment import AlignConfig, AlignResult, align_codebook, soft_usage
from aioir.models import load_model, read_pretrained_config, save_model
from udair_helpers import task_images


def _domains() -> tuple[list[tuple[str, torch.Tensor]], list[tuple[str, torch.Tensor]]]:
    """Source: the helper's task images; target: the same kinds of scenes, inverted and tinted
    (a clear shift of the DAM's features)."""
    src, tgt = task_images(3, 40, seed=1), task_images(3, 40, seed=2)
    tint = torch.tensor([0.9, 0.5, 0.2])[:, None, None]
    source = [(f"s{t}{i}.png", src[t][i]) for t in src for i in range(3)]
    target = [(f"t{t}{i}.png", (1 - tgt[t][i]) * 0.5 * tint + 0.1) for t in tgt for i in range(3)]
    return source, target


def _model() -> torch.nn.Module:
    """udair-tiny whose bottom codebook is drawn from both domains' features: a random
    network's codebook is collapsed (every position on one codeword), a trained one's is not."""
    torch.manual_seed(0)
    model = load_model("udair-tiny")
    source, target = _domains()
    with torch.no_grad():
        z = model.dam.bottom_features(torch.stack([x for _, x in source + target]))
        rows = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
        k = model.dam.codebook.quantize_b.embed.shape[1]
        pick = torch.randperm(rows.shape[0], generator=torch.Generator().manual_seed(1))[:k]
        model.dam.codebook.quantize_b.embed.copy_(rows[pick].t())
    return model


CONFIG = AlignConfig(steps=12, lr=1e-3, crop=32, batch_size=4, source_crops=8)


@pytest.fixture(scope="module")
def aligned(tmp_path_factory) -> tuple[torch.nn.Module, AlignResult, Path, float]:
    model = _model()
    source, target = _domains()
    x = target[0][1][None]
    with torch.no_grad():
        before = model(x)
    result = align_codebook(model, target, source, CONFIG)
    with torch.no_grad():
        changed = float((model(x) - before).abs().max())
    folder = save_adapted(model, tmp_path_factory.mktemp("aligned") / "m", result)
    return model, result, folder, changed


def test_alignment_lowers_its_loss_and_changes_outputs(aligned):
    _, result, _, changed = aligned
    assert result.after["align"] < 0.95 * result.before["align"]
    assert result.after["usage_kl"] < result.before["usage_kl"]
    assert changed > 1e-5
    assert result.after["source_l1"] < 1e-2  # source restoration kept
    assert len(result.losses) == CONFIG.steps


def test_the_aligned_model_saves_loads_and_restores(aligned, tmp_path, capsys):
    model, _, folder, _ = aligned
    config = read_pretrained_config(folder)
    assert config["overrides"]["code_projector"] is True
    assert config["metadata"]["domain_adaptation"]["method"] == "codebook"
    loaded = load_model(folder)
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.allclose(loaded(x), model(x), atol=1e-6)
    assert loaded.dam.code_projector.proj.weight.abs().max() > 0
    images = tmp_path / "in"
    write_image(images / "a.png", x[0].permute(1, 2, 0).numpy())
    code = cli.main(["restore", str(images), "-o", str(tmp_path / "out"), "--model", str(folder),
                     "--device", "cpu", "-q"])  # fmt: skip
    assert code == 0, capsys.readouterr().err


def test_soft_usage_is_a_distribution_that_follows_the_features():
    embed = torch.eye(4)
    near_first = torch.tensor([[1.0, 0, 0, 0]] * 3 + [[0, 1.0, 0, 0]])
    usage = soft_usage(near_first, embed, temperature=0.1)
    assert torch.isclose(usage.sum(), torch.tensor(1.0)) and usage.argmax() == 0


def test_adapt_cli_codebook(tmp_path, capsys):
    source, target = _domains()
    for folder, items in (("src", source), ("tgt", target)):
        for name, x in items:
            write_image(tmp_path / folder / name, x.permute(1, 2, 0).numpy())
    model_dir = save_model(_model(), tmp_path / "model")
    base = ["adapt", "--model", str(model_dir), "--target", str(tmp_path / "tgt"), "--device",
            "cpu", "-q", "--steps", "2", "--crop", "32", "--batch-size", "2"]  # fmt: skip
    assert cli.main([*base, "-o", str(tmp_path / "a"), "--method", "codebook"]) == 2
    assert "--source" in capsys.readouterr().err
    assert cli.main([*base, "-o", str(tmp_path / "a"), "--source", str(tmp_path / "src")]) == 2
    out = tmp_path / "aligned"
    code = cli.main(
        [*base, "-o", str(out), "--method", "codebook", "--source", str(tmp_path / "src")]
    )
    assert code == 0, capsys.readouterr().err
    assert read_pretrained_config(out)["metadata"]["domain_adaptation"]["steps"] == 2
    with pytest.raises(ConfigError, match="crop"):
        AlignConfig(crop=30)
