"""Domain adaptation over a folder: loss goes down, saved model loads with adapters and differs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from aioir.errors import ConfigError
from aioir.io import write_image
from aioir.methods.udair.adapt import AdaptConfig, adapt_to_folder, save_adapted
from aioir.models import load_model, read_pretrained_config
from udair_helpers import task_images


@pytest.fixture(scope="module")
def target_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("target")
    images = task_images(2, 40, seed=21)
    for task in ("noise", "lowlight"):
        for b in range(2):
            x = (images[task][b] * 0.8 + 0.1).permute(1, 2, 0).numpy()  # shifted domain
            write_image(folder / f"{task}{b}.png", x)
    return folder


def test_adapt_lowers_the_loss_saves_and_the_loaded_model_differs(
    spread_model_dir, target_dir, tmp_path
):
    model = load_model(spread_model_dir)
    result = adapt_to_folder(model, target_dir, AdaptConfig(steps=12, lr=1e-2, batch_size=4))
    assert result.final_loss < result.initial_loss
    assert set(result.assignments) == {"noise0.png", "noise1.png", "lowlight0.png", "lowlight1.png"}
    assert model.adapters_enabled and all(a.residual for a in model.adapters().values())
    out = save_adapted(model, tmp_path / "adapted", result)
    config = read_pretrained_config(out)
    assert config["metadata"]["adapters_enabled"] is True
    assert config["overrides"]["adapter_residual"] is True
    assert config["metadata"]["domain_adaptation"]["steps"] == 12

    loaded = load_model(out)  # switches the adapters on (metadata adapters_enabled)
    original = load_model(spread_model_dir)
    assert (
        loaded.adapters_enabled and loaded.source_bank.task_names == original.source_bank.task_names
    )
    x = torch.rand(1, 3, 40, 40, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.allclose(loaded(x), model(x), atol=1e-6)
        assert (loaded(x) - original(x)).abs().max() > 1e-5
    with pytest.raises(ConfigError, match="exists"):
        save_adapted(model, out, result)


def test_given_task_assigns_every_image_and_is_deterministic(spread_model_dir, target_dir):
    outputs = []
    for _ in range(2):
        model = load_model(spread_model_dir)
        result = adapt_to_folder(model, target_dir, AdaptConfig(task="haze", steps=3, batch_size=2))
        assert set(result.assignments.values()) == {"haze"}
        outputs.append({k: v.clone() for k, v in model.state_dict().items() if "distrib" in k})
    assert all(torch.equal(outputs[0][k], outputs[1][k]) for k in outputs[0])


def test_adapt_needs_a_bank_and_known_task(spread_model_dir, target_dir):
    with pytest.raises(ConfigError, match="source bank"):
        adapt_to_folder(load_model("udair-tiny"), target_dir, AdaptConfig(steps=1))
    with pytest.raises(ConfigError, match="no task"):
        adapt_to_folder(load_model(spread_model_dir), target_dir, AdaptConfig(task="snow", steps=1))


def test_adapt_with_statistics_uses_the_stored_covariance_and_lowers_the_loss(
    stats_model_dir, target_dir, tmp_path
):
    from aioir.methods.udair.tta import coral_objective

    model = load_model(stats_model_dir)
    config = AdaptConfig(steps=12, lr=1e-2, batch_size=4, reference="statistics")
    result = adapt_to_folder(model, target_dir, config)
    summary = result.summary()
    assert summary["reference"] == "statistics" and summary["chooser"] == "mahalanobis"
    assert result.final_loss < 0.9 * result.initial_loss
    # the probe objective is the statistics one: its value differs from the mean-map objective
    fresh = load_model(stats_model_dir)
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        o = fresh.forward_features(x, decode=False)
    maps = {"g4": o.g4, "g3": o.g3, "g2": o.g2}
    stats = float(coral_objective(maps, fresh.source_bank, 0))
    mean_map = float(coral_objective(maps, fresh.source_bank, 0, reference="mean_map"))
    assert stats == pytest.approx(float(coral_objective(maps, fresh.source_bank, 0, 1e5,
                                                        "statistics")))  # fmt: skip
    assert stats != pytest.approx(mean_map, rel=1e-3)
    # saved with its (format-2) bank, statistics included
    out = save_adapted(model, tmp_path / "adapted", result)
    assert load_model(out).source_bank.has_statistics
    # the default reference stays the authors' mean map (measured better for folders)
    default = adapt_to_folder(load_model(stats_model_dir), target_dir, AdaptConfig(steps=1))
    assert default.summary()["reference"] == "mean_map"
    # same probe crops (same seed), other objective
    assert default.initial_loss != pytest.approx(result.initial_loss, rel=1e-3)


def test_adapt_config_rejects_unknown_chooser_and_reference():
    with pytest.raises(ConfigError, match="chooser"):
        AdaptConfig(chooser="magic")
    with pytest.raises(ConfigError, match="reference"):
        AdaptConfig(reference="magic")
