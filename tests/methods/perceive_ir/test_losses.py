"""Perceive-IR's loss terms against hand computations; every missing-weights path."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from aioir.errors import ConfigError
from aioir.losses import CompositeLoss, LossInputs
from aioir.methods.perceive_ir.losses import (
    DifficultyPerceptualLoss,
    HaarPyramid,
    QualityLoss,
    degradation_infonce,
    difficulty_weights,
    patch_psnr,
)
from aioir.methods.perceive_ir.model import PerceiveIROutput
from aioir.methods.perceive_ir.perceiver import QualityPerceiver, save_perceiver
from aioir.nn.vgg import vgg16_state_dict_shapes


def test_infonce_by_hand():
    torch.manual_seed(0)
    a = F.normalize(torch.randn(4, 8), dim=-1)
    p = F.normalize(torch.randn(4, 8), dim=-1)
    labels = torch.tensor([0, 0, 1, 2])
    value, fraction = degradation_infonce(a, p, labels, 0.1)
    losses = []
    for i in range(4):
        negs = [a[j] for j in range(4) if labels[j] != labels[i]]
        logits = torch.tensor([a[i] @ p[i]] + [a[i] @ n for n in negs]) / 0.1
        losses.append(-logits.log_softmax(0)[0])
    assert torch.allclose(value, torch.stack(losses).mean(), atol=1e-5)
    assert fraction == 1.0


def test_infonce_skips_samples_without_negatives_and_detaches_them():
    a = F.normalize(torch.randn(3, 4), dim=-1).requires_grad_(True)
    p = F.normalize(torch.randn(3, 4), dim=-1)
    value, fraction = degradation_infonce(a, p, torch.tensor([0, 0, 0]), 0.1)
    assert value.item() == 0.0 and fraction == 0.0
    value, fraction = degradation_infonce(a, p, torch.tensor([0, 0, 1]), 0.1)
    assert fraction == 1.0
    value.backward()
    assert a.grad is not None


def test_infonce_term_reads_the_positive_from_the_model_output():
    loss = CompositeLoss({"degradation_infonce": 0.1})
    code = F.normalize(torch.randn(4, 8), dim=-1)
    out = PerceiveIROutput(torch.rand(4, 3, 8, 8), code, code.flip(0), torch.rand(4, 3, 8, 8))
    inputs = LossInputs(
        out.image, out.image, code, None, 2, 2, task_ids=torch.tensor([0, 0, 1, 1]),
        task_names=["noise", "haze"], outputs=out,
    )  # fmt: skip
    total, logs = loss(inputs)
    assert total > 0 and logs["degradation_infonce_valid"] == 1.0
    with pytest.raises(ConfigError, match="positive"):
        loss(LossInputs(out.image, out.image, code, None, task_ids=torch.tensor([0, 0, 1, 1])))


def test_quality_loss_is_one_minus_p_high():
    class Fixed(torch.nn.Module):
        def forward(self, x):
            return torch.log(torch.tensor([[0.2, 0.3, 0.5]])).expand(x.shape[0], 3)

    term = QualityLoss(Fixed())
    value, _ = term(LossInputs(torch.rand(2, 3, 8, 8) * 3, torch.rand(2, 3, 8, 8)))
    assert math.isclose(value.item(), 0.5, rel_tol=1e-5)


def test_perceiver_quality_reads_a_file_and_names_the_key(tmp_path):
    path = tmp_path / "p.safetensors"
    save_perceiver(QualityPerceiver((8, 8), 8), path)
    loss = CompositeLoss({"perceiver_quality": {"weight": 0.05, "perceiver": str(path)}})
    pred = torch.rand(2, 3, 16, 16, requires_grad=True)
    total, _ = loss(LossInputs(pred, pred.detach()))
    total.backward()
    assert pred.grad is not None and 0 < total.item() < 0.05
    with pytest.raises(ConfigError, match=r"losses\.perceiver_quality\.perceiver"):
        CompositeLoss({"perceiver_quality": 0.05})
    with pytest.raises(ConfigError, match=r"losses\.perceiver_quality\.perceiver: .*not found"):
        CompositeLoss({"perceiver_quality": {"perceiver": str(tmp_path / "none")}})


def test_difficulty_weights_follow_the_probe():
    psnr = torch.tensor([20.0, 30.0, 25.0])
    assert difficulty_weights(psnr, None).tolist() == [1.0, 1.0, 1.0]
    assert difficulty_weights(psnr, 25.0).tolist() == [1.25, 0.75, 1.25]
    assert torch.allclose(patch_psnr(torch.full((1, 3, 2, 2), 0.1), torch.zeros(1, 3, 2, 2)),
                          torch.tensor([20.0]))  # fmt: skip


class _Identity(torch.nn.Module):
    def forward(self, x):
        return [x, x[..., ::2, ::2]]


def test_difficulty_perceptual_by_hand():
    term = DifficultyPerceptualLoss(_Identity(), [0.5, 1.0], input_weight=2.0)
    y = torch.zeros(2, 1, 4, 4)
    pred = torch.full((2, 1, 4, 4), 0.1)
    x = torch.full((2, 1, 4, 4), 0.5)
    proxy = torch.full((2, 1, 4, 4), 0.3)
    mask = torch.tensor([1.0, 0.0])
    w = torch.tensor([1.25, 0.75])
    value = term.loss(pred, y, x, [(proxy, mask)], [w])
    # per level: d(ŷ,y) = 0.1, d(ŷ,x) = 0.4, d(ŷ,proxy) = 0.2
    s0 = 1.5 * 0.1 / (2 * 0.4 + 1.25 * 0.2)
    s1 = 1.5 * 0.1 / (2 * 0.4)
    assert math.isclose(value.item(), (s0 + s1) / 2, rel_tol=1e-5)


def test_haar_pyramid_is_fixed_and_multiscale():
    pyr = HaarPyramid(3)
    feats = pyr(torch.rand(1, 3, 16, 18))
    assert [f.shape for f in feats] == [(1, 12, 8, 9), (1, 12, 4, 4), (1, 12, 2, 2)]
    flat = pyr(torch.full((1, 3, 8, 8), 0.5))[0]
    assert torch.allclose(flat[:, 0::4], torch.ones(1, 3, 4, 4))  # low-pass: 2 × mean
    assert flat[:, 1::4].abs().max() == 0  # no detail in a flat image
    assert not list(pyr.parameters())


def test_difficulty_perceptual_term_with_proxies_and_probe():
    loss = CompositeLoss({"difficulty_perceptual": {"weight": 0.1, "features": "wavelet"}})
    term = loss.terms[0]
    proxy = torch.nn.Conv2d(3, 3, 1)
    term.proxies = [(proxy, frozenset({"noise"}))]
    pred = torch.rand(2, 3, 16, 16, requires_grad=True)
    inputs = LossInputs(
        pred, torch.rand(2, 3, 16, 16), batch={"input": torch.rand(2, 3, 16, 16)},
        task_ids=torch.tensor([0, 1]), task_names=["noise", "haze"],
    )  # fmt: skip
    value, logs = term(inputs)
    assert "hard_rate" not in logs  # no probe yet: weights 1
    term.set_reference_psnr(100.0)
    value, logs = term(inputs)
    assert logs["hard_rate"].item() == 1.0  # every proxy is below 100 dB
    value.backward()
    assert pred.grad is not None


def test_difficulty_perceptual_missing_weights_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"losses\.difficulty_perceptual\.vgg16: set it"):
        CompositeLoss({"difficulty_perceptual": 0.1})
    with pytest.raises(ConfigError, match=r"difficulty_perceptual\.vgg16: .*not found"):
        CompositeLoss({"difficulty_perceptual": {"vgg16": str(tmp_path / "vgg16.pth")}})
    with pytest.raises(ConfigError, match=r"proxies\[0\]\.model"):
        CompositeLoss(
            {"difficulty_perceptual": {"features": "wavelet", "proxies": [str(tmp_path / "m")]}}
        )


def test_difficulty_perceptual_vgg_taps_from_a_file(tmp_path):
    g = torch.Generator().manual_seed(0)
    shapes = {k: s for k, s in vgg16_state_dict_shapes().items() if k.startswith("features.")}
    torch.save({k: torch.randn(s, generator=g) * 0.05 for k, s in shapes.items()},
               tmp_path / "vgg16.pth")  # fmt: skip
    loss = CompositeLoss({"difficulty_perceptual": {"vgg16": str(tmp_path / "vgg16.pth")}})
    taps = loss.terms[0].features(torch.rand(1, 3, 16, 16))
    assert [t.shape[1] for t in taps] == [64, 128, 256, 256]
    assert taps[1].min() < 0  # conv2_2 is tapped before its ReLU


def test_probe_spans_the_input_psnr_quantiles_and_measures_the_model():
    from aioir.methods.perceive_ir.callbacks import DifficultyProbeCallback, select_probe

    target = torch.zeros(6, 3, 4, 4)
    noise = torch.tensor([0.01, 0.3, 0.1, 0.2, 0.05, 0.02]).view(6, 1, 1, 1)
    batch = {"input": target + noise, "target": target, "task_id": torch.tensor([0] * 6)}
    chosen = select_probe([batch], 3)
    picked = [float(low.mean()) for low, _ in chosen]
    assert picked == pytest.approx([0.3, 0.1, 0.01])  # worst, middle (round(2.5) = 2), best
    probe = DifficultyProbeCallback(lambda n: [batch], per_task=3)
    value = probe.measure(torch.nn.Identity(), torch.device("cpu"))
    assert value == pytest.approx(float(patch_psnr(batch["input"], target)[[1, 2, 0]].mean()))


def test_perceiver_triplets_drop_poor_mediums_and_clean_lows():
    from aioir.methods.perceive_ir.callbacks import _triplet

    high = torch.zeros(3, 3, 4, 4)
    low = torch.stack([torch.full((3, 4, 4), v) for v in (0.2, 0.2, 0.0)])
    medium = torch.stack([torch.full((3, 4, 4), v) for v in (0.1, 0.19, 0.0)])
    images, labels = _triplet(low, medium, high, margin_db=1.0, clean_db=45.0)
    assert labels.tolist() == [0, 0, 1, 2, 2, 2]
    assert images.shape[0] == 6
