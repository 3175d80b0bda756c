"""UDAIR test-time adaptation: identity start, episodic reset, blind choice, loss goes down."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from aioir.errors import ConfigError
from aioir.methods.udair.bank import SourceBank
from aioir.methods.udair.bank_accumulation import RowStatisticsAccumulator
from aioir.methods.udair.tta import (
    CHOOSERS,
    TTAConfig,
    UDAIRTestTimeAdapter,
    choose_reference,
    coral_objective,
    pooled_size,
    reinit_adapters,
    resolve_chooser,
    udair_tta,
)
from aioir.models import load_model
from aioir.restore.adaptation import get_test_time_adapter
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


def test_zero_initialised_residual_adapters_leave_the_output_unchanged(model):
    x = task_images(1, 48, seed=3)["noise"]
    with torch.no_grad():
        plain = model(x)
        reinit_adapters(model, seed=5, residual=True)
        model.set_adapters(True)
        adapted = model(x)
        # the reference (non-residual, random) adapters do change it
        model.distrib_adapt3.residual = False
        changed = model(x)
    assert torch.equal(plain, adapted)
    assert not torch.allclose(plain, changed)


def test_default_tta_first_loss_is_the_unadapted_one_and_adaptation_lowers_it(model):
    x = task_images(1, 48, seed=4)["haze"]
    tta = udair_tta("default", task="noise", steps=8, lr=1e-2, tol=-1.0, patience=100)
    out = Restorer(model, device="cpu", tile=0, tta=tta).restore_tensor(x)
    report = tta.reports[0]
    with torch.no_grad():
        raw = model.forward_features(x, decode=False)
    start = coral_objective({"g4": raw.g4, "g3": raw.g3, "g2": raw.g2}, model.source_bank, 0)
    assert report["losses"][0] == pytest.approx(float(start), rel=1e-5)
    assert report["steps"] == 8
    assert report["best_loss"] < 0.9 * report["losses"][0]
    assert out.shape == x.shape and torch.isfinite(out).all()


@pytest.mark.parametrize("mode", ["default", "faithful"])
def test_episodic_reset_restores_every_weight_and_buffer(model, mode):
    before = _snapshot(model)
    grads = {k: p.requires_grad for k, p in model.named_parameters()}
    images = task_images(1, 40, seed=6)
    tta = udair_tta(
        mode, task="haze" if mode == "faithful" else None, steps=3, tol=-1.0, work_size=32
    )
    restorer = Restorer(model, device="cpu", tile=0, tta=tta)
    second_alone = restorer.restore_tensor(images["lowlight"])
    assert _same(before, _snapshot(model))
    restorer.restore_tensor(images["noise"])
    assert _same(before, _snapshot(model))  # adapters, codebook EMA buffers, everything
    assert not model.training and not model.adapters_enabled
    assert {k: p.requires_grad for k, p in model.named_parameters()} == grads
    assert all(not a.residual for a in model.adapters().values())
    # the next image does not inherit anything from the previous one
    assert torch.equal(restorer.restore_tensor(images["lowlight"]), second_alone)


def test_faithful_changes_codebooks_during_adaptation_but_not_after(model):
    before = model.dam.codebook.quantize_b.embed.clone()
    tta = udair_tta("faithful", task="noise", work_size=48)
    out = Restorer(model, device="cpu", tile=0, tta=tta).restore_tensor(
        task_images(1, 40, seed=7)["noise"]
    )
    assert out.shape == (1, 3, 40, 40)  # 48×48 internally (256 by default), resized back
    assert len(tta.reports[0]["losses"]) == 5 and tta.reports[0]["steps"] == 4
    assert torch.equal(model.dam.codebook.quantize_b.embed, before)


def test_faithful_needs_a_task_and_is_reproducible(model):
    blind = udair_tta("faithful", work_size=32)  # the task comes per image (aioir evaluate)
    assert blind.needs_task and not blind.for_task("dehazing").needs_task
    with pytest.raises(ConfigError, match="task"):
        Restorer(model, device="cpu", tile=0, tta=blind).restore_tensor(
            task_images(1, 32, seed=9)["haze"]
        )
    with pytest.raises(ConfigError, match="mode"):
        TTAConfig(mode="magic")
    x = task_images(1, 32, seed=8)["haze"]
    a = Restorer(model, device="cpu", tile=0, tta=udair_tta("faithful", task="haze", work_size=32))
    b = Restorer(model, device="cpu", tile=0, tta=udair_tta("faithful", task="haze", work_size=32))
    torch.manual_seed(123)
    first = a.restore_tensor(x)
    torch.manual_seed(999)
    assert torch.equal(first, b.restore_tensor(x))  # dropout seeded per image


def _separated(k: int, seed: int, batch: bool) -> dict[str, torch.Tensor]:
    """Task k: mean 2k, standard deviation 3^k, at every level (C×h×w as a tiny bank)."""
    g = torch.Generator().manual_seed(seed)
    shapes = {"g4": (8, 4, 4), "g3": (4, 8, 8), "g2": (2, 16, 16)}
    out = {}
    for level, shape in shapes.items():
        x = 2.0 * k + 3.0**k * torch.randn(shape, generator=g)
        out[level] = x if batch else x[None]
    return out


def _separated_bank(statistics: bool) -> SourceBank:
    levels = {lv: torch.stack([_separated(k, 100 + k, True)[lv] for k in range(3)]) for lv in
              ("g4", "g3", "g2")}  # fmt: skip
    bank = SourceBank(levels, TASKS, {"patch_size": 32})
    if statistics:  # the row statistics of 8 draws per task
        acc = RowStatisticsAccumulator(TASKS)
        for k in range(3):
            for seed in range(8):
                acc.add_items(_separated(k, 200 + 10 * seed + k, False), torch.tensor([k]))
        result = acc.result()
        bank.means, bank.covs, bank.within = result["mean"], result["cov"], result["within"]
    return bank


@pytest.mark.parametrize("chooser", CHOOSERS)
def test_blind_choice_is_right_on_clearly_separated_cases(chooser):
    bank = _separated_bank(statistics=True)
    for k in range(3):
        for seed in range(3):
            index, dist = choose_reference(_separated(k, seed, False), bank, chooser)
            assert index == k, (chooser, k, dist)
            assert dist.shape == (3,) and torch.isfinite(dist).all()


def test_auto_chooser_follows_the_bank_and_mahalanobis_needs_statistics():
    with_stats, old = _separated_bank(True), _separated_bank(False)
    maps = _separated(1, 7, False)
    assert resolve_chooser("auto", with_stats) == "mahalanobis"
    assert resolve_chooser("auto", old) == "centroid"
    torch.testing.assert_close(
        choose_reference(maps, with_stats)[1], choose_reference(maps, with_stats, "mahalanobis")[1]
    )
    torch.testing.assert_close(
        choose_reference(maps, old)[1], choose_reference(maps, old, "centroid")[1]
    )
    with pytest.raises(ConfigError, match="statistics"):
        choose_reference(maps, old, "mahalanobis")


def test_mahalanobis_uses_the_stored_covariance_not_just_the_means():
    """A mean row off along a low-variance direction is far, although Euclidean-near."""
    c = 4
    means = torch.zeros(2, c)
    means[1, :2] = torch.tensor([0.2, 1.0])
    cov = torch.diag(torch.tensor([0.01, 1.0, 1.0, 1.0])).expand(2, c, c).clone()
    levels = {lv: torch.zeros(2, c, 2, 2) for lv in ("g4", "g3", "g2")}
    bank = SourceBank(levels, ["a", "b"], {"patch_size": 8})
    bank.means = {lv: means for lv in levels}
    bank.covs = {lv: cov for lv in levels}
    bank.within = {lv: cov for lv in levels}
    # mean row (0.2, 0, 0, 0): Euclidean nearer a, but 0.2 along dim 0 (variance 0.01) is far
    # from a in Mahalanobis terms, 1.0 along dim 1 (variance 1) is near b
    g = torch.tensor([0.2, 0.0, 0.0, 0.0]).view(1, c, 1, 1).expand(1, c, 2, 2)
    maps = {lv: g for lv in levels}
    assert choose_reference(maps, bank, "mahalanobis")[0] == 1
    centroid = SourceBank({lv: means.view(2, c, 1, 1).expand(2, c, 2, 2) for lv in levels},
                          ["a", "b"], {"patch_size": 8})  # fmt: skip
    assert choose_reference(maps, centroid, "centroid")[0] == 0


def test_default_tta_tiles_at_full_resolution_and_reports_the_blind_choice(model):
    x = task_images(1, 72, seed=9)["lowlight"][..., :60]
    tta = udair_tta("default", work_size=32)
    out = Restorer(model, device="cpu", tile=32, tile_overlap=8, tta=tta).restore_tensor(x)
    assert out.shape == x.shape
    report = tta.reports[0]
    assert report["blind"] and report["task"] in TASKS and len(report["distances"]) == 3
    assert report["work_size"] == (38, 32)  # 72×60 downscaled to a short side of 32


def test_registered_adapter_and_restore_api(model_dir, model):
    adapter = get_test_time_adapter(model)
    assert isinstance(adapter, UDAIRTestTimeAdapter) and adapter.config.mode == "default"
    import aioir

    x = task_images(1, 24, seed=10)["noise"][0].permute(1, 2, 0).numpy()
    out = aioir.restore(x, model=str(model_dir), tta=True, device="cpu", tile=0)
    assert out.shape == x.shape


def test_missing_bank_is_a_config_error():
    bare = load_model("udair-tiny")
    with pytest.raises(ConfigError, match="source bank"):
        Restorer(bare, device="cpu", tile=0, tta=True, allow_untrained=True).restore_tensor(
            torch.rand(1, 3, 16, 16)
        )


def test_pooled_size_keeps_the_short_side_of_the_bank():
    assert pooled_size((64, 64), (32, 32)) == (32, 32)
    assert pooled_size((64, 128), (32, 32)) == (32, 64)
    assert pooled_size((8, 8), (16, 16)) == (16, 16)


# ------------------------------------------------------------------ banks with statistics
def _stats_loss(model, x: torch.Tensor, index: int, scale: float = 1e5) -> float:
    """The statistics objective computed by hand: Σ ‖W_k − Cov(rows)‖_F / (4C²)."""
    from aioir.losses.coral import covariance

    bank = model.source_bank
    with torch.no_grad():
        out = model.forward_features(x, decode=False)
    total = 0.0
    for level, g in (("g4", out.g4), ("g3", out.g3), ("g2", out.g2)):
        h, w = bank.levels[level].shape[-2:]
        rows = torch.nn.functional.adaptive_avg_pool2d(g, (h, w))[0].flatten(1).t()
        c = rows.shape[1]
        total += float((bank.within[level][index] - covariance(rows)).norm()) / (4 * c * c)
    return total * scale


def test_default_tta_with_stored_covariance_starts_unchanged_and_lowers_the_loss(
    stats_model_dir,
):
    model = load_model(stats_model_dir)
    assert model.source_bank.has_statistics
    x = task_images(1, 48, seed=4)["haze"]
    plain = Restorer(model, device="cpu", tile=0).restore_tensor(x)
    # an update too small to move any weight: the output is exactly the unadapted model's
    still = udair_tta("default", task="noise", steps=1, lr=1e-30, weight_decay=0.0)
    assert torch.equal(Restorer(model, device="cpu", tile=0, tta=still).restore_tensor(x), plain)
    assert still.reports[0]["reference"] == "statistics"

    tta = udair_tta("default", task="noise", steps=8, lr=1e-2, tol=-1.0, patience=100)
    out = Restorer(model, device="cpu", tile=0, tta=tta).restore_tensor(x)
    report = tta.reports[0]
    assert report["reference"] == "statistics"
    assert report["losses"][0] == pytest.approx(_stats_loss(model, x, 0), rel=1e-4)
    assert report["best_loss"] < 0.9 * report["losses"][0]
    assert out.shape == x.shape and not torch.equal(out, plain)
    # the authors' reference gives another objective on the same bank
    mm = udair_tta("default", task="noise", steps=1, reference="mean_map")
    Restorer(model, device="cpu", tile=0, tta=mm).restore_tensor(x)
    assert mm.reports[0]["reference"] == "mean_map"
    assert mm.reports[0]["losses"][0] != pytest.approx(report["losses"][0], rel=1e-3)


def test_blind_default_tta_uses_the_mahalanobis_chooser_with_statistics(stats_model_dir, model):
    x = task_images(1, 32, seed=12)["lowlight"]
    tta = udair_tta("default", steps=1)
    Restorer(load_model(stats_model_dir), device="cpu", tile=0, tta=tta).restore_tensor(x)
    assert tta.reports[0]["chooser"] == "mahalanobis" and tta.reports[0]["blind"]
    old = udair_tta("default", steps=1)  # a bank without statistics: the old behaviour
    Restorer(model, device="cpu", tile=0, tta=old).restore_tensor(x)
    assert old.reports[0]["chooser"] == "centroid"
    assert old.reports[0]["reference"] == "mean_map"


def test_faithful_ignores_the_statistics(stats_model_dir):
    """Faithful mode keeps the authors' mean-map objective: same output with or without them."""
    with_stats = load_model(stats_model_dir)
    without = load_model(stats_model_dir)
    without.source_bank.means = without.source_bank.covs = without.source_bank.within = None
    x = task_images(1, 32, seed=13)["noise"]
    outs, losses = [], []
    for m in (with_stats, without):
        tta = udair_tta("faithful", task="haze", work_size=32)
        outs.append(Restorer(m, device="cpu", tile=0, tta=tta).restore_tensor(x))
        losses.append(tta.reports[0]["losses"])
        assert tta.reports[0]["reference"] == "mean_map"
    assert torch.equal(outs[0], outs[1]) and losses[0] == losses[1]


def test_statistics_reference_needs_statistics(model):
    x = task_images(1, 32, seed=14)["noise"]
    tta = udair_tta("default", task="noise", steps=1, reference="statistics")
    with pytest.raises(ConfigError, match="statistics"):
        Restorer(model, device="cpu", tile=0, tta=tta).restore_tensor(x)
    with pytest.raises(ConfigError, match="faithful"):
        TTAConfig(mode="faithful", task="noise", reference="statistics")
    with pytest.raises(ConfigError, match="reference"):
        TTAConfig(reference="magic")


def test_the_command_line_offers_exactly_the_adapters_modes():
    from aioir.cli._tta import tta_modes
    from aioir.methods.udair import cli
    from aioir.methods.udair.tta import TTA_MODES

    assert set(cli.TTA_MODES) == set(TTA_MODES) == set(tta_modes())
