"""SyntheticDegradationDataset: seeding, task indexing, small images, CutMix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from aioir.data.synthetic import SyntheticDegradationDataset, TaskSpec
from aioir.degradations import degradation_class
from aioir.errors import ConfigError, DatasetLayoutError

# cheap degradations keep the tests fast (camera noise is ~50 ms a patch)
TASKS = {"noise": ["gaussian_noise"], "jpeg": ["jpeg"]}


@pytest.fixture
def photos(tmp_path: Path) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for name, (h, w) in {"b.png": (40, 48), "a.png": (44, 40), "c.png": (20, 24)}.items():
        yy, xx = np.mgrid[0:h, 0:w]
        img = np.stack([xx * 5 % 256, yy * 6 % 256, (xx + yy) * 3 % 256], -1)
        img = (img + rng.integers(0, 20, img.shape)).clip(0, 255).astype(np.uint8)
        Image.fromarray(img).save(tmp_path / name)
        paths.append(tmp_path / name)
    return paths


def _same(x: dict, y: dict) -> None:
    assert (x["task"], x["name"], x["task_id"]) == (y["task"], y["name"], y["task_id"])
    torch.testing.assert_close(x["input"], y["input"], atol=0, rtol=0)
    torch.testing.assert_close(x["target"], y["target"], atol=0, rtol=0)


def test_deterministic_mode_is_reproducible_and_order_independent(photos: list[Path]) -> None:
    a = SyntheticDegradationDataset(photos, TASKS, patch_size=16, seed=3, deterministic=True)
    b = SyntheticDegradationDataset(photos[::-1], TASKS, 16, seed=3, deterministic=True)
    c = SyntheticDegradationDataset(photos[0].parent, TASKS, 16, seed=3, deterministic=True)
    b.set_epoch(5)  # epochs do not matter in deterministic mode
    order = list(range(len(a)))
    for i in order:
        _same(a[i], b[i])
    for i in reversed(order):  # access order (≈ worker split) does not matter either
        _same(a[i], c[i])
    other = SyntheticDegradationDataset(photos, TASKS, 16, seed=4, deterministic=True)
    assert not torch.equal(a[0]["input"], other[0]["input"])
    # the key is (seed, name, task): dropping an image does not change the others
    d = SyntheticDegradationDataset(photos[:2], TASKS, 16, seed=3, deterministic=True)
    by_key = {(a[i]["task"], a[i]["name"]): a[i] for i in order}
    for i in range(len(d)):
        _same(d[i], by_key[(d[i]["task"], d[i]["name"])])


def test_training_items_change_with_epoch_but_not_with_access(photos: list[Path]) -> None:
    ds = SyntheticDegradationDataset(photos, TASKS, patch_size=16, seed=1)
    first = [ds[i] for i in range(len(ds))]
    _same(ds[2], first[2])
    ds.set_epoch(1)
    second = [ds[i] for i in range(len(ds))]
    assert all(not torch.equal(x["input"], y["input"]) for x, y in zip(first, second))
    ds.set_epoch(0)
    _same(ds[4], first[4])


def test_items_tasks_and_small_images(photos: list[Path]) -> None:
    ds = SyntheticDegradationDataset(photos, TASKS, patch_size=32, seed=0)
    assert len(ds) == 6
    assert ds.task_indices == {0: [0, 1, 2], 1: [3, 4, 5]}
    assert [ds[i]["name"] for i in range(3)] == ["a.png", "b.png", "c.png"]  # sorted by name
    for tid, idx in ds.task_indices.items():
        for i in idx:
            item = ds[i]
            assert item["task_id"] == tid and item["task"] == list(TASKS)[tid]
            assert item["input"].shape == item["target"].shape == (3, 32, 32)  # c.png is 20×24
            assert item["input"].dtype == torch.float32
            assert float(item["input"].min()) >= 0.0 and float(item["input"].max()) <= 1.0
            assert not torch.equal(item["input"], item["target"])
    whole = SyntheticDegradationDataset(photos, TASKS, patch_size=None, deterministic=True)
    assert whole[0]["input"].shape == (3, 44, 40)
    assert torch.equal(whole[0]["target"], whole[0]["target"].clamp(0, 1))


def test_length_cycles_images_with_distinct_draws(photos: list[Path]) -> None:
    ds = SyntheticDegradationDataset(photos, TASKS, 16, length=7, deterministic=True)
    assert len(ds) == 14 and ds.task_indices[1] == list(range(7, 14))
    assert ds[0]["name"] == ds[3]["name"] == "a.png"
    assert not torch.equal(ds[0]["input"], ds[3]["input"])
    with pytest.raises(IndexError):
        ds[14]


def test_cutmix_label_map(photos: list[Path]) -> None:
    tasks = {**TASKS, "blur": ["gaussian_blur"]}
    ds = SyntheticDegradationDataset(photos, tasks, 24, cutmix=True, seed=2)
    labels = set()
    for i in range(len(ds)):
        item = ds[i]
        lm = item["label_map"]
        assert lm.shape == (24, 24) and lm.dtype == torch.int64
        labels |= set(lm.unique().tolist())
    assert labels <= {0, 1, 2, 3} and len(labels) >= 3
    with pytest.raises(ConfigError, match="two tasks"):
        SyntheticDegradationDataset(photos, ["noise"], cutmix=True)


def test_task_specs_and_errors(photos: list[Path]) -> None:
    gauss = degradation_class("gaussian_noise")
    seen = []

    def sigma25(severity: float, generator: torch.Generator):
        seen.append(severity)
        return gauss(sigma=25.0)

    spec = {"denoise25": TaskSpec((sigma25,), severity=(0.2, 0.3)), "jpeg": ["jpeg"]}
    ds = SyntheticDegradationDataset(photos, spec, 16, severity="mild")
    item = ds[0]
    assert item["task"] == "denoise25"
    assert 0.05 < float((item["input"] - item["target"]).std()) < 0.15  # σ = 25/255 ≈ 0.098
    assert seen and all(0.2 <= s <= 0.3 for s in seen)
    with pytest.raises(ConfigError, match="not a known task"):
        SyntheticDegradationDataset(photos, ["sharpen"])
    with pytest.raises(ConfigError, match="unknown degradation"):
        SyntheticDegradationDataset(photos, {"noise": ["no_such_thing"]})
    with pytest.raises(ConfigError, match="severity"):
        SyntheticDegradationDataset(photos, ["noise"], severity=1.5)
    with pytest.raises(DatasetLayoutError, match="share the file name"):
        SyntheticDegradationDataset([photos[0], photos[0]], ["noise"])


def test_task_indices_feed_the_balanced_sampler(photos: list[Path]) -> None:
    from aioir.data.samplers import TaskBalancedBatchSampler

    ds = SyntheticDegradationDataset(photos, TASKS, 16, length=4)
    sampler = TaskBalancedBatchSampler(ds.task_indices, 2, num_replicas=1, rank=0)
    batch = next(iter(sampler))
    assert [ds.locate(i)[0] for i in batch] == [0, 0, 1, 1]
    assert [ds[i]["task_id"] for i in batch[1:3]] == [0, 1]


def test_photometric_jitter_changes_the_clean_patch_shared_by_input_and_target(
    photos: list[Path],
) -> None:
    plain = SyntheticDegradationDataset(photos, ["clean"], 16, seed=2, length=6)
    jittered = SyntheticDegradationDataset(photos, ["clean"], 16, seed=2, length=6, photometric=1.0)
    changed = 0
    for i in range(len(plain)):
        a, b = plain[i], jittered[i]
        torch.testing.assert_close(b["input"], b["target"], atol=0, rtol=0)  # identity task
        changed += not torch.equal(a["target"], b["target"])
    assert changed == len(plain)
    with pytest.raises(ConfigError, match="photometric"):
        SyntheticDegradationDataset(photos, ["clean"], 16, photometric=2.0)


def test_white_balance_jitter_changes_the_clean_patch_shared_by_input_and_target(
    photos: list[Path],
) -> None:
    plain = SyntheticDegradationDataset(photos, ["clean", "blur"], 16, seed=2, length=3)
    tinted = SyntheticDegradationDataset(
        photos, ["clean", "blur"], 16, seed=2, length=3, white_balance=1.0
    )
    for i in range(len(plain)):
        a, b = plain[i], tinted[i]
        if b["task"] == "clean":
            torch.testing.assert_close(b["input"], b["target"], atol=0, rtol=0)
        assert not torch.equal(a["target"], b["target"])
        # the cast is a per-channel gain: channel means move in different directions
        ratio = b["target"].mean(dim=(-2, -1)) / a["target"].mean(dim=(-2, -1)).clamp_min(1e-6)
        assert float(ratio.max() - ratio.min()) > 1e-3
    with pytest.raises(ConfigError, match="white_balance"):
        SyntheticDegradationDataset(photos, ["clean"], 16, white_balance=1.5)


def _chains(monkeypatch: pytest.MonkeyPatch) -> list:
    """Record every Compose the dataset applies (its degradations, in application order)."""
    from aioir.degradations import Compose

    seen: list = []
    original = Compose.apply

    def spy(self, images, generator):
        seen.append(self.degradations)
        return original(self, images, generator)

    monkeypatch.setattr(Compose, "apply", spy)
    return seen


def test_composite_tasks_chain_their_components_in_physical_order(
    photos: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _chains(monkeypatch)
    specs = {
        "noise": TaskSpec(("gaussian_noise",)),
        "jpeg+noise": TaskSpec(),  # noise from the spec above, jpeg: a known task's default
        "lowlight+haze+rain": TaskSpec(severity="severe"),
    }
    ds = SyntheticDegradationDataset(photos, specs, patch_size=16, seed=1, deterministic=True)
    assert ds.task_names == ["noise", "jpeg+noise", "lowlight+haze+rain"]
    assert sorted(ds.component_specs) == ["haze", "jpeg", "lowlight", "rain"]
    for i in range(len(ds)):
        item = ds[i]
        assert item["input"].shape == (3, 16, 16) and item["task"] == ds.task_names[i // 3]
    assert len(seen) == 6  # the plain task applies no Compose
    pair = [[d.task for d in chain] for chain in seen[:3]]
    triple = [[d.task for d in chain] for chain in seen[3:]]
    assert pair == [["noise", "jpeg"]] * 3  # sensor noise before compression
    assert triple == [["haze", "rain", "lowlight"]] * 3
    assert all(d.name == "gaussian_noise" for chain in seen[:3] for d in chain[:1])
    # the same item twice: the same chain and pixels (seeded by task and image name)
    again = SyntheticDegradationDataset(photos, specs, patch_size=16, seed=1, deterministic=True)
    _same(ds[4], again[4])


def test_composite_severity_applies_to_components_without_their_own(
    photos: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _chains(monkeypatch)
    specs = {
        "noise": TaskSpec(("gaussian_noise",), severity=(0.0, 0.0)),
        "noise+haze": TaskSpec(severity=(1.0, 1.0)),
    }
    ds = SyntheticDegradationDataset(photos, specs, patch_size=16, seed=0, deterministic=True)
    for i in range(3, 6):
        ds[i]
    for haze, noise in seen:
        assert noise.sigma == 5.0  # its own severity 0: σ = 5 + 55·0
        assert haze.beta > 0.18  # the composite's severity 1: β = 0.2 ± 10 %


@pytest.mark.parametrize(
    ("tasks", "message"),
    [
        ({"noise+fog": TaskSpec()}, "component 'fog' is neither"),
        ({"noise+rain": TaskSpec(("jpeg",))}, "composite task takes its components"),
        (["rain+rain"], "repeats a component"),
    ],
)
def test_composite_errors(photos: list[Path], tasks, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SyntheticDegradationDataset(photos, tasks, patch_size=16)


def test_composite_tasks_mix_with_cutmix(photos: list[Path]) -> None:
    tasks = {"noise": TaskSpec(("gaussian_noise",)), "jpeg+noise": TaskSpec()}
    ds = SyntheticDegradationDataset(photos, tasks, patch_size=16, cutmix=True, deterministic=True)
    item = ds[3]
    assert item["task"] == "jpeg+noise" and set(item["label_map"].unique().tolist()) <= {0, 1, 2}


def test_shared_crops_crop_every_task_at_the_same_place(photos: list[Path]) -> None:
    tasks = {"noise": ["gaussian_noise"], "jpeg": ["jpeg"], "jpeg+noise": TaskSpec()}
    ds = SyntheticDegradationDataset(
        photos, tasks, patch_size=16, deterministic=True, shared_crops=True
    )
    for j in range(3):
        targets = [ds[t * 3 + j]["target"] for t in range(3)]
        assert all(torch.equal(targets[0], x) for x in targets[1:])
    plain = SyntheticDegradationDataset(photos, tasks, patch_size=16, deterministic=True)
    assert not all(torch.equal(plain[j]["target"], plain[3 + j]["target"]) for j in range(2))
    with pytest.raises(ConfigError, match="deterministic"):
        SyntheticDegradationDataset(photos, tasks, patch_size=16, shared_crops=True)


def test_defocus_renders_the_clean_patch_out_of_focus_for_input_and_target(
    photos: list[Path],
) -> None:
    plain = SyntheticDegradationDataset(photos, ["clean", "noise"], 16, seed=3, length=4)
    bokeh = SyntheticDegradationDataset(
        photos, ["clean", "noise"], 16, seed=3, length=4, defocus=1.0
    )
    smoother = 0
    for i in range(len(plain)):
        a, b = plain[i], bokeh[i]
        if b["task"] == "clean":
            torch.testing.assert_close(b["input"], b["target"], atol=0, rtol=0)
        else:  # the noise is drawn on the defocused target
            assert float((b["input"] - b["target"]).abs().mean()) > 0.0
        detail = (b["target"].diff(dim=-1).abs().mean(), a["target"].diff(dim=-1).abs().mean())
        smoother += int(float(detail[0]) < float(detail[1]))
    assert smoother == len(plain)
    with pytest.raises(ConfigError, match="defocus"):
        SyntheticDegradationDataset(photos, ["clean"], 16, defocus=1.5)


@pytest.mark.parametrize("option, brighter", [("high_key", True), ("low_key", False)])
def test_a_key_rendering_changes_the_clean_patch_for_input_and_target(
    photos: list[Path], option: str, brighter: bool
) -> None:
    """high_key renders the clean patch bright, low_key dark; input and target share it."""
    plain = SyntheticDegradationDataset(photos, ["clean", "noise"], 16, seed=5, length=4)
    keyed = SyntheticDegradationDataset(
        photos, ["clean", "noise"], 16, seed=5, length=4, **{option: 1.0}
    )
    for i in range(len(plain)):
        a, b = plain[i], keyed[i]
        assert (float(b["target"].mean()) > float(a["target"].mean())) == brighter
        if b["task"] == "clean":
            torch.testing.assert_close(b["input"], b["target"], atol=0, rtol=0)
    with pytest.raises(ConfigError, match=option):
        SyntheticDegradationDataset(photos, ["clean"], 16, **{option: 1.5})


def test_dark_renders_the_clean_patch_dim_for_input_and_target(photos: list[Path]) -> None:
    plain = SyntheticDegradationDataset(photos, ["clean", "noise"], 16, seed=4, length=4)
    dark = SyntheticDegradationDataset(photos, ["clean", "noise"], 16, seed=4, length=4, dark=1.0)
    for i in range(len(plain)):
        a, b = plain[i], dark[i]
        assert 0.05 - 1e-3 <= float(b["target"].mean()) <= 0.25 + 1e-3
        assert float(b["target"].mean()) < float(a["target"].mean())
        if b["task"] == "clean":
            torch.testing.assert_close(b["input"], b["target"], atol=0, rtol=0)
        else:  # the noise is drawn on the dark target
            assert float((b["input"] - b["target"]).abs().mean()) > 0.0
    with pytest.raises(ConfigError, match="dark"):
        SyntheticDegradationDataset(photos, ["clean"], 16, dark=-0.5)


def test_pale_renders_the_clean_patch_shared_by_input_and_target(photos: list[Path]) -> None:
    plain = SyntheticDegradationDataset(photos, ["clean", "blur"], 16, seed=2, length=3)
    pale = SyntheticDegradationDataset(photos, ["clean", "blur"], 16, seed=2, length=3, pale=1.0)
    for i in range(len(plain)):
        a, b = plain[i], pale[i]
        if b["task"] == "clean":
            torch.testing.assert_close(b["input"], b["target"], atol=0, rtol=0)
        grey = b["target"].amax(0) - b["target"].amin(0)
        assert float(grey.mean()) < float((a["target"].amax(0) - a["target"].amin(0)).mean())
        assert 0.5 < float(b["target"].mean()) < 0.85
    with pytest.raises(ConfigError, match="pale"):
        SyntheticDegradationDataset(photos, ["clean"], 16, pale=-0.1)


def test_grey_makes_input_and_target_a_black_and_white_photo(photos: list[Path]) -> None:
    plain = SyntheticDegradationDataset(photos, ["noise"], 16, seed=5, length=3)
    grey = SyntheticDegradationDataset(photos, ["noise"], 16, seed=5, length=3, grey=1.0)
    for i in range(len(grey)):
        a, b = plain[i], grey[i]
        for key in ("input", "target"):  # one value per pixel, the same in every channel
            assert torch.equal(b[key][0], b[key][1]) and torch.equal(b[key][1], b[key][2])
        assert not torch.equal(a["input"][0], a["input"][1])  # colour noise differs per channel
        assert float((b["input"] - b["target"]).abs().mean()) > 0.0  # and the noise is kept
    with pytest.raises(ConfigError, match="grey"):
        SyntheticDegradationDataset(photos, ["noise"], 16, grey=2.0)
