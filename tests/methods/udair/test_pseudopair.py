"""UDAIR's pseudo-pair test-time objective: identity at 0 steps, the loss falls, episodic reset,
the output changes, the severity match, folder adaptation, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from aioir import cli
from aioir.errors import ConfigError
from aioir.io import write_image
from aioir.methods.udair.pseudopair import (
    SEVERITY_GRID,
    PseudoPairAdaptConfig,
    adapt_folder_pseudo_pairs,
    make_pseudo_pairs,
    task_recipes,
)
from aioir.methods.udair.tta import TTAConfig, udair_tta
from aioir.models import load_model, read_pretrained_config
from aioir.restore.api import Restorer
from udair_helpers import TASKS, build_tiny_udair, task_images


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return build_tiny_udair(tmp_path_factory.mktemp("udair") / "tiny")


@pytest.fixture
def model(model_dir):
    return load_model(model_dir)


def _snapshot(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _restore(model, x, tta=None):
    return Restorer(model, device="cpu", tile=0, tta=tta).restore_tensor(x)


def test_zero_steps_is_exactly_the_unadapted_restoration(model):
    x = task_images(1, 40, seed=3)["noise"]
    plain = _restore(model, x)
    tta = udair_tta("pseudo-pair", steps=0)
    assert torch.equal(_restore(model, x, tta), plain)
    report = tta.reports[0]
    assert report["steps"] == 0 and len(report["losses"]) == 1
    assert report["blind"] and report["task"] in TASKS


def test_the_pseudo_pair_loss_falls_and_the_output_changes(model):
    x = task_images(1, 40, seed=4)["haze"]
    plain = _restore(model, x)
    tta = udair_tta("pseudo-pair", task="noise", steps=6, lr=1e-2, tol=-1.0, patience=100)
    out = _restore(model, x, tta)
    report = tta.reports[0]
    assert report["steps"] == 6 and len(report["losses"]) == 7
    assert report["best_loss"] < 0.97 * report["losses"][0]
    assert report["degradation"][0] in ("gaussian_noise", "camera_noise")
    assert out.shape == x.shape and not torch.equal(out, plain)
    # the first loss is L1(f(x'), ŷ₀) of the unadapted network on the same pairs
    from aioir.methods.udair.tta import working_image

    work = working_image(x, 256, 32)
    with torch.no_grad():
        restored = model(work).clamp(0, 1)
        pairs = make_pseudo_pairs(model, work, restored, "noise", model.source_bank, seed=42)
        first = torch.nn.functional.l1_loss(model(pairs.inputs), pairs.targets)
    assert report["losses"][0] == pytest.approx(float(first), rel=1e-5)


def test_fixed_seed_reproduces_and_coral_term_changes_the_objective(model):
    x = task_images(1, 32, seed=5)["lowlight"]
    a = udair_tta("pseudo-pair", task="lowlight", steps=2, severity=0.5)
    b = udair_tta("pseudo-pair", task="lowlight", steps=2, severity=0.5)
    assert torch.equal(_restore(model, x, a), _restore(model, x, b))
    assert a.reports[0]["losses"] == b.reports[0]["losses"]
    assert a.reports[0]["severity"] == [0.5, 0.5]
    c = udair_tta("pseudo-pair", task="lowlight", steps=2, severity=0.5, coral_weight=1.0)
    _restore(model, x, c)
    assert c.reports[0]["l1"][0] == pytest.approx(a.reports[0]["losses"][0], rel=1e-6)
    assert c.reports[0]["losses"][0] > c.reports[0]["l1"][0]


def test_weights_are_reset_between_images(model):
    before = _snapshot(model)
    grads = {k: p.requires_grad for k, p in model.named_parameters()}
    images = task_images(1, 40, seed=6)
    tta = udair_tta("pseudo-pair", steps=3, lr=1e-2, tol=-1.0)
    restorer = Restorer(model, device="cpu", tile=0, tta=tta)
    alone = restorer.restore_tensor(images["lowlight"])
    assert _same(before, _snapshot(model))
    restorer.restore_tensor(images["noise"])
    assert _same(before, _snapshot(model))
    assert not model.training and not model.adapters_enabled
    assert not model.adapter_grad_to_decoder
    assert {k: p.requires_grad for k, p in model.named_parameters()} == grads
    assert torch.equal(restorer.restore_tensor(images["lowlight"]), alone)


def test_severity_match_picks_the_candidate_that_reproduces_the_input(model):
    """An input made by re-degrading the model's own restoration with one candidate (same draw)
    has embedding distance 0 to that candidate: the match must pick it."""
    from aioir.methods.udair.pseudopair import _degrade, pair_seed

    clean = task_images(1, 48, seed=7)["haze"]
    with torch.no_grad():
        restored = model(clean).clamp(0, 1)
    for recipe, severity in ((("gaussian_noise",), 0.75), (("camera_noise",), 0.25)):
        noisy = _degrade(restored, recipe, severity, seed=pair_seed(3, 0))
        pairs = make_pseudo_pairs(
            model, noisy, restored, "noise", model.source_bank, pairs=1, crop=48, seed=3
        )
        assert pairs.distances is not None and len(pairs.distances) == 2 * len(SEVERITY_GRID)
        assert pairs.recipe == [recipe] and pairs.severity == [severity]
        assert pairs.distances[f"{recipe[0]}@{severity:g}"] == pytest.approx(0.0, abs=1e-9)
        assert min(pairs.distances.values()) == pairs.distances[f"{recipe[0]}@{severity:g}"]
    fixed = make_pseudo_pairs(
        model, noisy, restored, "noise", model.source_bank, severity=0.25, pairs=3, crop=16
    )
    assert fixed.distances is None and fixed.severity == [0.25] * 3
    assert fixed.inputs.shape == (3, 3, 16, 16) and fixed.targets.shape == (3, 3, 16, 16)


def test_recipes_of_plain_composite_and_unknown_tasks():
    assert task_recipes("clean") == [("identity",)]
    assert ("gaussian_noise",) in task_recipes("denoising")
    assert ("haze", "rain") in task_recipes("haze+rain")
    with pytest.raises(ConfigError, match="no registered degradation"):
        task_recipes("snow")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"severity": 1.5}, "severity"),
        ({"severity": "strong"}, "severity"),
        ({"pairs": 0}, "pairs"),
        ({"crop": 4}, "crop"),
        ({"coral_weight": -1.0}, "coral_weight"),
        ({"steps": -1}, "steps"),
    ],
)
def test_bad_options_are_one_line_config_errors(options, message):
    with pytest.raises(ConfigError, match=message) as exc:
        TTAConfig(mode="pseudo-pair", **options)
    assert "\n" not in str(exc.value)


def test_pseudo_pair_options_belong_to_the_pseudo_pair_mode():
    with pytest.raises(ConfigError, match="pseudo-pair mode only"):
        TTAConfig(mode="default", severity=0.5)
    with pytest.raises(ConfigError, match="steps"):
        TTAConfig(mode="default", steps=0)  # 0 updates is a pseudo-pair option only
    assert TTAConfig(mode="pseudo-pair").max_steps == 5


def test_restore_command_line_offers_the_mode(model_dir, tmp_path, capsys):
    folder = tmp_path / "in"
    write_image(folder / "a.png", task_images(1, 32, seed=8)["noise"][0].permute(1, 2, 0).numpy())
    argv = ["restore", str(folder), "-o", str(tmp_path / "out"), "--model", str(model_dir),
            "--tta-mode", "pseudo-pair", "--tta-task", "noise", "--device", "cpu", "--tile", "0",
            "-q"]  # fmt: skip
    assert cli.main(argv) == 0, capsys.readouterr().err
    assert (tmp_path / "out" / "a.png").is_file()


# ------------------------------------------------------------------ aioir adapt
@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("images")
    batch = task_images(2, 36, seed=31)
    for task in ("noise", "haze"):
        for b in range(2):
            write_image(folder / f"{task}{b}.png", batch[task][b].permute(1, 2, 0).numpy())
    return folder


def test_folder_adaptation_lowers_the_probe_loss_and_changes_the_model(model, images):
    result = adapt_folder_pseudo_pairs(
        model, images, PseudoPairAdaptConfig(steps=8, lr=1e-2, batch_size=2, crop=24, seed=1)
    )
    summary = result.summary()
    assert summary["method"] == "pseudo-pair" and summary["images"] == 4
    assert set(result.degradations) == set(result.assignments)
    assert result.final_loss < result.initial_loss
    assert model.adapters_enabled and not model.training
    assert model.aioir_config["overrides"]["adapter_residual"] is True
    x = task_images(1, 32, seed=9)["noise"]
    with torch.no_grad():
        adapted = model(x)
        model.set_adapters(False)
        assert (adapted - model(x)).abs().max() > 1e-6


def test_adapt_command_writes_a_pseudo_pair_model(model_dir, images, tmp_path, capsys):
    out = tmp_path / "pp"
    argv = ["adapt", "--model", str(model_dir), "--target", str(images), "-o", str(out),
            "--method", "pseudo-pair", "--severity", "0.5", "--steps", "2", "--batch-size", "2",
            "--crop", "24", "--device", "cpu", "-q"]  # fmt: skip
    assert cli.main(argv) == 0, capsys.readouterr().err
    record = read_pretrained_config(out)["metadata"]["domain_adaptation"]
    assert record["method"] == "pseudo-pair" and record["severity"] == 0.5
    assert read_pretrained_config(out)["metadata"]["adapters_enabled"] is True


def test_adapt_command_severity_errors(model_dir, images, tmp_path, capsys):
    base = ["adapt", "--model", str(model_dir), "--target", str(images), "-o",
            str(tmp_path / "x"), "--steps", "1", "-q"]  # fmt: skip
    assert cli.main([*base, "--severity", "0.5"]) == 2  # coral-adapters has no severity
    assert "pseudo-pair only" in capsys.readouterr().err
    assert cli.main([*base, "--method", "pseudo-pair", "--severity", "hard"]) == 1
    err = capsys.readouterr().err
    assert "severity" in err and len(err.strip().splitlines()) == 1
    assert cli.main([*base, "--method", "pseudo-pair", "--severity", "2"]) == 1
    assert "[0, 1]" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
