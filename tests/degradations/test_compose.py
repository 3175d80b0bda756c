"""Tests for aioir.degradations.compose: Compose, random_degradation and degradation CutMix."""

from __future__ import annotations

import pytest
import torch

from aioir.degradations import (
    TASKS,
    Compose,
    CutMixResult,
    Degradation,
    available_degradations,
    degradation_class,
    degradation_cutmix,
    random_degradation,
)
from aioir.degradations.compose import canonical_order
from aioir.degradations.haze import Haze
from aioir.degradations.rain import RainStreaks
from helpers import astronaut_batch


def _sample(name: str, severity: float = 0.5, seed: int = 0) -> Degradation:
    return degradation_class(name).sample(severity, torch.Generator().manual_seed(seed))


def test_compose_applies_in_order_and_is_deterministic() -> None:
    x = astronaut_batch(48)
    haze, rain = Haze(beta=0.15), RainStreaks(density=0.01)
    comp = Compose((haze, rain))
    y = comp.apply(x, torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    expect = rain.apply(haze.apply(x, g).clamp(0, 1), g)
    assert torch.equal(y, expect)
    assert torch.equal(y, comp.apply(x, torch.Generator().manual_seed(3)))
    other = Compose((rain, haze)).apply(x, torch.Generator().manual_seed(3))
    assert not torch.allclose(y, other, atol=1e-3)
    out = comp(x[0], seed=3)  # __call__ on a single 3×H×W tensor
    single = comp.apply(x[:1], torch.Generator().manual_seed(3))[0]
    assert out.shape == x[0].shape and torch.allclose(out, single)
    p = comp.params()
    assert p["name"] == "compose" and [d["name"] for d in p["degradations"]] == ["haze", "rain"]
    assert comp.tasks == ("haze", "rain")
    assert comp == Compose([haze, rain]) and hash(comp) == hash(Compose((haze, rain)))


def test_compose_rejects_non_degradations() -> None:
    with pytest.raises(TypeError):
        Compose((Haze(), "rain"))  # type: ignore[arg-type]


def test_canonical_order() -> None:
    names = ["jpeg", "gaussian_noise", "motion_blur", "rain", "low_light", "haze", "underwater"]
    degs = [_sample(n) for n in names if n in available_degradations()]
    tasks = [d.task for d in canonical_order(degs)]
    order = ["haze", "underwater", "rain", "blur", "lowlight", "noise", "jpeg"]
    ranks = [0 if t in ("haze", "underwater") else order.index(t) - 1 for t in tasks]
    assert ranks == sorted(ranks)
    assert tasks[0] == "haze" and tasks[1] == "underwater"  # ties keep the given order
    assert tasks[-1] == "jpeg"


def test_compose_sample() -> None:
    for seed in range(3):
        c = Compose.sample(0.5, torch.Generator().manual_seed(seed))
        assert isinstance(c, Compose)
        assert 2 <= len(c.tasks) <= 3 and len(set(c.tasks)) == len(c.tasks)


def test_random_degradation_single_and_multi() -> None:
    for task in TASKS:
        if not available_degradations(task):
            continue
        d = random_degradation(task, "mild", torch.Generator().manual_seed(0))
        assert isinstance(d, Degradation) and d.task == task
    d = random_degradation(["jpeg", "noise", "haze"], "severe", 5)
    assert isinstance(d, Compose)
    assert sorted(d.tasks) == ["haze", "jpeg", "noise"]
    assert d.tasks == ("haze", "noise", "jpeg")  # canonical order
    again = random_degradation(["jpeg", "noise", "haze"], "severe", 5)
    assert d == again
    x = astronaut_batch(48)
    y = d.apply(x, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and float(y.min()) >= 0 and float(y.max()) <= 1


def test_random_degradation_choice_and_names() -> None:
    picked = {random_degradation("noise", 0.5, seed).name for seed in range(30)}
    assert picked == set(available_degradations("noise"))
    restricted = {
        random_degradation(["noise", "rain"], 0.5, seed, names=["camera_noise"]).tasks
        for seed in range(5)
    }
    assert restricted == {("rain", "noise")}
    for seed in range(10):
        d = random_degradation(["noise", "rain"], 0.5, seed, names=["camera_noise"])
        assert d.degradations[1].name == "camera_noise"
    with pytest.raises(ValueError):
        random_degradation("fog")
    with pytest.raises(ValueError):
        random_degradation(["rain", "rain"])
    with pytest.raises(KeyError):
        random_degradation("rain", names=["snow"])


def test_random_degradation_tier_strength() -> None:
    mild = [random_degradation("haze", "mild", s).beta for s in range(10)]
    severe = [random_degradation("haze", "severe", s).beta for s in range(10)]
    assert max(mild) < min(severe)


def _cutmix_setup() -> tuple[torch.Tensor, list[Degradation]]:
    x = astronaut_batch(32)
    degs = [
        Haze(beta=0.2, airlight=0.95),
        RainStreaks(density=0.02, brightness=0.9),
        _sample("gaussian_noise", 0.9),
    ]
    return x, degs


def test_cutmix_labels_match_fully_degraded_images() -> None:
    x, degs = _cutmix_setup()
    for seed in range(4):
        res = degradation_cutmix(x, degs, torch.Generator().manual_seed(seed), clean_prob=0.25)
        assert isinstance(res, CutMixResult)
        assert res.degraded.shape == x.shape
        assert res.label_map.shape == (2, 32, 32) and res.label_map.dtype == torch.int64
        g = torch.Generator().manual_seed(seed)
        full = [x] + [d.apply(x, g).clamp(0, 1) for d in degs]
        for k in range(len(degs) + 1):
            m = (res.label_map == k)[:, None].expand_as(x)
            assert torch.equal(res.degraded[m], full[k][m])


def test_cutmix_every_class_appears_and_regions() -> None:
    x, degs = _cutmix_setup()
    seen: set[int] = set()
    for seed in range(8):
        res = degradation_cutmix(x, degs, torch.Generator().manual_seed(seed), num_regions=(2, 4))
        seen |= set(res.label_map.unique().tolist())
        for lm in res.label_map:
            assert len(lm.unique()) <= 4
    assert seen == {0, 1, 2, 3}
    single = degradation_cutmix(x, degs, torch.Generator().manual_seed(0), num_regions=1)
    assert all(len(lm.unique()) == 1 for lm in single.label_map)
    none_clean = degradation_cutmix(x, degs, torch.Generator().manual_seed(0), clean_prob=0.0)
    assert int((none_clean.label_map == 0).sum()) == 0


def test_cutmix_task_classes() -> None:
    x, degs = _cutmix_setup()
    res = degradation_cutmix(x, degs, torch.Generator().manual_seed(1), classes="task")
    allowed = {0} | {TASKS.index(d.task) + 1 for d in degs}
    assert set(res.label_map.unique().tolist()) <= allowed
    custom = degradation_cutmix(x, degs, torch.Generator().manual_seed(1), classes=[5, 6, 7])
    base = degradation_cutmix(x, degs, torch.Generator().manual_seed(1))
    lut = torch.tensor([0, 5, 6, 7])
    assert torch.equal(custom.label_map, lut[base.label_map])
    with pytest.raises(ValueError):
        degradation_cutmix(x, degs, torch.Generator(), classes=[0, 1, 2])
    with pytest.raises(ValueError):
        degradation_cutmix(x, degs, torch.Generator(), classes=[1, 2])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu() -> None:
    from aioir.degradations.underwater import UnderwaterCast

    x = astronaut_batch(32)
    degs = [RainStreaks(layers=2, veil=0.1), Haze(beta=0.15), UnderwaterCast()]
    for d in degs:
        cpu = d.apply(x, torch.Generator().manual_seed(0))
        gpu = d.apply(x.cuda(), torch.Generator().manual_seed(0))
        assert gpu.device.type == "cuda"
        assert torch.allclose(gpu.cpu(), cpu, atol=1e-4)
    res_cpu = degradation_cutmix(x, degs, torch.Generator().manual_seed(2))
    res_gpu = degradation_cutmix(x.cuda(), degs, torch.Generator().manual_seed(2))
    assert res_gpu.label_map.device.type == "cuda"
    assert torch.equal(res_gpu.label_map.cpu(), res_cpu.label_map)
    assert torch.allclose(res_gpu.degraded.cpu(), res_cpu.degraded, atol=1e-4)
