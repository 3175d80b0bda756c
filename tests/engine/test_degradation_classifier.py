"""Training the degradation classifier (a fit whose gate reads one: ``test_filter_bank.py``)."""

from __future__ import annotations

import pytest
import torch

from aioir.engine.degradation_classifier import (
    ClassifierOptions,
    classifier_accuracy,
    train_classifier,
)
from aioir.errors import ConfigError


def _toy(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Three kinds of 16-px crops: clean mid-grey texture, the same noisy, the same dark."""
    g = torch.Generator().manual_seed(seed)
    base = 0.4 + 0.2 * torch.rand(n, 1, 16, 16, generator=g).expand(n, 3, 16, 16)
    labels = torch.arange(n) % 3
    noisy = (base + 0.15 * torch.randn(base.shape, generator=g)).clamp(0, 1)
    x = torch.where((labels == 1)[:, None, None, None], noisy, base)
    x = torch.where((labels == 2)[:, None, None, None], 0.15 * base, x)
    return x.half(), labels


@pytest.mark.parametrize("precision", ["bf16-mixed", "32"])
def test_the_classifier_learns_to_tell_noise_and_darkness_from_clean(precision):
    torch.manual_seed(0)
    inputs, labels = _toy(90, seed=0)
    options = ClassifierOptions(widths=[4, 8], hidden=16, patch_size=16, min_crop=12,
                                steps=200, batch_size=16, lr=1e-2, precision=precision)  # fmt: skip
    model = train_classifier(inputs, labels, ["clean", "noise", "dark"], options, progress=False)
    assert not model.training
    held_out, truth = _toy(60, seed=1)
    assert classifier_accuracy(model, held_out, truth) > 0.9
    untrained = train_classifier(inputs, labels, ["clean", "noise", "dark"],
                                 ClassifierOptions(widths=[4, 8], hidden=16, patch_size=16,
                                                   min_crop=12, steps=1), progress=False)  # fmt: skip
    assert classifier_accuracy(untrained, held_out, truth) < 0.7


@pytest.mark.parametrize(
    ("options", "message"),
    [({"steps": 0}, "steps"), ({"min_crop": 64, "patch_size": 32}, "min_crop"),
     ({"widths": []}, "widths"), ({"lr": 0.0}, "lr"),
     ({"dark_items_per_task": -1}, "dark_items_per_task"),
     ({"extra_crops": ["pale"]}, r"extra_crops\[0\]"),
     ({"extra_crops": [{"data": {}, "items_per_task": 5}]}, r"extra_crops\[0\]\.data"),
     ({"extra_crops": [{"data": {"pale": 1.0}, "items_per_task": -1}]}, "items_per_task"),
     ({"extra_crops": [{"data": {"pale": 1.0}, "items_per_task": 5, "salt": 1}]}, "extra_crops"),
     ({"cross_fit": "yes"}, "cross_fit"), ({"highlight_powers": [8, -1]}, "highlight_powers"),
     ({"highlight_powers": [True]}, "highlight_powers"),
     ({"shadow_powers": [8]}, "shadow_powers"),
     ({"highlight_powers": [8], "shadow_powers": [0]}, "shadow_powers"),
     ({"highlight_powers": [8], "shadow_powers": [8], "shadow_bands": 1}, "shadow_bands"),
     ({"highlight_powers": [8], "shadow_powers": [8], "shadow_bands": True}, "shadow_bands"),
     ({"highlight_powers": [8], "shadow_bands": 3}, "shadow_bands"),
     ({"precision": "bf16"}, "precision")],
)  # fmt: skip
def test_classifier_options_are_validated(options, message):
    with pytest.raises(ConfigError, match=message):
        ClassifierOptions(**options).validate("filter_bank.classifier")


class _FakeData:
    """A datamodule stand-in: for each task, one crop degraded a little and one a lot."""

    def __init__(self, task_names: tuple[str, ...] = ("noise", "clean")) -> None:
        self.task_names = task_names

    def task_spec(self, task: str) -> str:
        return task

    def synthetic_pairs(self, specs, items, patch_size, salt):
        g = torch.Generator().manual_seed(salt)
        out = []
        for task_id, task in enumerate(specs):
            for sigma in (1e-3, 0.2)[:items]:
                target = torch.rand(3, patch_size, patch_size, generator=g)
                noise = sigma * torch.randn(target.shape, generator=g)
                out.append({"input": target + noise, "target": target, "task_id": task_id,
                            "task": task, "name": "ab"[len(out) % 2] + ".png"})  # fmt: skip
        return out


def test_crops_too_lightly_degraded_to_matter_are_labelled_clean():
    from aioir.engine.degradation_classifier import classifier_crops

    inputs, labels, names, photos = classifier_crops([(_FakeData(), 2)], 8, salt=0,
                                                     progress=False)  # fmt: skip
    assert names == ["noise", "clean"] and inputs.dtype == torch.float16
    assert labels.tolist() == [0, 0, 1, 1]
    assert photos == ["a.png", "b.png", "a.png", "b.png"]  # each crop's photo
    _, relabelled, _, _ = classifier_crops([(_FakeData(), 2)], 8, 0, False, clean_above=40.0)
    assert relabelled.tolist() == [1, 0, 1, 1]  # σ = 0.001 (≈ 60 dB) reads as clean


def test_crops_of_some_tasks_only_are_labelled_by_task_name():
    """A later source may cut crops of some of the tasks (e.g. dark scenes, noisy or clean,
    but not under-exposed): each is labelled by its task's place among the first's."""
    from aioir.engine.degradation_classifier import classifier_crops

    sources = [(_FakeData(), 1), (_FakeData(("clean",)), 2)]
    _, labels, names, _ = classifier_crops(sources, 8, salt=0, progress=False)
    assert names == ["noise", "clean"] and labels.tolist() == [0, 1, 1, 1]
    with pytest.raises(ConfigError, match="not among"):
        classifier_crops([(_FakeData(), 1), (_FakeData(("rain",)), 1)], 8, 0, False)


def test_photo_folds_split_the_photos_in_turn_by_name():
    from aioir.engine.degradation_classifier import photo_folds

    folds = photo_folds(["c.png", "a.png", "b.png", "a.png", "d.png", "e.png"])
    assert folds == {"a.png": 0, "b.png": 1, "c.png": 0, "d.png": 1, "e.png": 0}
    assert photo_folds(reversed(list(folds))) == folds  # the order given does not matter
