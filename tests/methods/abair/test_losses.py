"""ABAIR's loss terms against hand computations."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from aioir.errors import ConfigError
from aioir.losses import CompositeLoss, LossInputs
from aioir.methods.abair.model import ABAIRFeatures

TASKS = ("noise", "rain", "haze")


def _inputs(outputs: ABAIRFeatures, **kw) -> LossInputs:
    x = outputs.image
    return LossInputs(x, x, outputs=outputs, **kw)


def test_segmentation_term_is_pixel_cross_entropy() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 3, 5)
    labels = torch.randint(0, 4, (2, 3, 5))
    out = ABAIRFeatures(torch.rand(2, 3, 3, 5), logits, None)
    loss = CompositeLoss({"abair_segmentation": 0.5})
    total, logs = loss(_inputs(out, batch={"label_map": labels}))
    expected = -F.log_softmax(logits, 1).gather(1, labels[:, None]).mean()
    torch.testing.assert_close(total, 0.5 * expected)
    assert "abair_segmentation_accuracy" in logs
    with pytest.raises(ConfigError, match="label map"):
        loss(_inputs(out))
    with pytest.raises(ConfigError, match="classes"):
        loss(_inputs(out, batch={"label_map": labels + 4}))


def test_estimator_term_single_and_multi_hot() -> None:
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 3.0]])
    out = ABAIRFeatures(torch.rand(2, 3, 4, 4), None, logits, TASKS)
    ids = torch.tensor([0, 1])
    single, _ = CompositeLoss({"abair_estimator": 1.0})(
        _inputs(out, task_ids=ids, task_names=["noise", "haze"])
    )
    p = logits.softmax(1)
    torch.testing.assert_close(single, -(p[0, 0].log() + p[1, 2].log()) / 2)
    multi, logs = CompositeLoss({"abair_estimator": {"weight": 1.0, "mode": "multi"}})(
        _inputs(out, task_ids=ids, task_names=["noise", "rain+haze"])
    )
    target = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    torch.testing.assert_close(multi, F.binary_cross_entropy_with_logits(logits, target))
    assert float(logs["abair_estimator_accuracy"]) == 1.0  # both rows right at 0.5
    with pytest.raises(ConfigError, match="'snow' has no adapter"):
        CompositeLoss({"abair_estimator": 1.0})(
            _inputs(out, task_ids=ids, task_names=["snow", "haze"])
        )
    with pytest.raises(ConfigError, match="mode"):
        CompositeLoss({"abair_estimator": {"mode": "soft"}})
