"""The degradation classifier: shapes, its pooled statistics, one decision per tiled image."""

from __future__ import annotations

import pytest
import torch

from aioir.nn.degradation_classifier import DegradationClassifier
from aioir.nn.image_statistics import recording, replaying

CLASSES = ["noise", "haze", "clean"]


def _classifier() -> DegradationClassifier:
    torch.manual_seed(0)
    return DegradationClassifier(CLASSES, widths=(4, 6), hidden=8).eval()


def test_logits_per_image_at_any_size():
    model = _classifier()
    for shape in [(2, 3, 16, 16), (1, 3, 23, 41)]:
        with torch.no_grad():
            logits = model(torch.rand(shape))
        assert logits.shape == (shape[0], len(CLASSES))
        assert model.last_logits is not None and torch.equal(model.last_logits, logits)
    assert model.num_classes == 3 and model.widths == [4, 6] and model.hidden == 8


def test_pooled_statistics_are_stage_means_and_log_energies():
    model = _classifier()
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        pooled = model.pooled(x)
        h1 = model.stages[0](x * 2 - 1)
        h2 = model.stages[1](h1)
    assert pooled.shape == (2, 2 * (4 + 6))
    torch.testing.assert_close(pooled[:, :4], h1.mean(dim=(2, 3)))
    torch.testing.assert_close(pooled[:, 10:14], h1.pow(2).mean(dim=(2, 3)).log())
    torch.testing.assert_close(pooled[:, 4:10], h2.mean(dim=(2, 3)))


def test_noise_raises_the_first_stage_energy():
    """What the classifier has to read noise from: the full-resolution stage's energy."""
    model = _classifier()
    flat = torch.full((1, 3, 32, 32), 0.5)
    noisy = flat + 0.1 * torch.randn(generator=torch.Generator().manual_seed(0), size=flat.shape)
    with torch.no_grad():
        assert model.pooled(noisy)[0, 10:14].sum() > model.pooled(flat)[0, 10:14].sum()


def test_the_crops_of_a_tiled_image_share_one_decision():
    model = _classifier()
    crops = torch.rand(4, 3, 16, 16)  # 2 crops of each of 2 images, crop-major
    with torch.no_grad(), recording(crops=2) as kept:
        pooled = model(crops)
    assert torch.equal(pooled[0], pooled[2]) and torch.equal(pooled[1], pooled[3])
    assert not torch.equal(pooled[0], pooled[1])
    with torch.no_grad(), replaying(kept):  # every tile replays its image's decision
        again = model(torch.rand(2, 3, 8, 8))
    assert torch.equal(again, pooled[:2])


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="two classes"):
        DegradationClassifier(["only"])
    with pytest.raises(ValueError, match="widths"):
        DegradationClassifier(CLASSES, widths=(4, 0))
