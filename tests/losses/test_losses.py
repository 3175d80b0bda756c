"""Losses: L1/Charbonnier, FFT, mean colour, CORAL, composition (UDAIR's CSCL: tests/methods/udair)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from aioir.errors import ConfigError
from aioir.losses import (
    CompositeLoss,
    LossInputs,
    charbonnier_loss,
    coral_loss,
    covariance,
    fft_l1_loss,
    l1_loss,
    mean_color_loss,
    parse_loss_specs,
    psnr_loss,
)


def test_l1_and_charbonnier_values():
    pred = torch.tensor([[0.0, 2.0], [-1.0, 1.5]])  # no clamping: values outside [0, 1] count
    target = torch.zeros(2, 2)
    assert l1_loss(pred, target).item() == pytest.approx(4.5 / 4)
    expected = np.mean(np.sqrt(np.array([0.0, 4.0, 1.0, 2.25]) + 1e-6))
    assert charbonnier_loss(pred, target).item() == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError):
        l1_loss(pred, target[:1])


def test_fft_l1_equals_numpy_and_is_size_independent():
    g = torch.Generator().manual_seed(0)
    pred, target = torch.rand(2, 3, 8, 6, generator=g), torch.rand(2, 3, 8, 6, generator=g)
    spec = np.fft.rfft2((pred - target).numpy().astype(np.float64), norm="ortho")
    expected = np.mean(np.abs(np.stack([spec.real, spec.imag], -1)))
    assert fft_l1_loss(pred, target).item() == pytest.approx(expected, rel=1e-5)
    backward = fft_l1_loss(pred, target, norm="backward").item()
    assert backward == pytest.approx(expected * math.sqrt(8 * 6), rel=1e-5)
    # ortho: white noise of σ 0.1 costs the same at 32² and 128² (≈ 0.1·√(1/π) ≈ 0.056)
    small = fft_l1_loss(0.1 * torch.randn(1, 1, 32, 32, generator=g), torch.zeros(1, 1, 32, 32))
    large = fft_l1_loss(0.1 * torch.randn(1, 1, 128, 128, generator=g), torch.zeros(1, 1, 128, 128))
    assert small.item() == pytest.approx(large.item(), rel=0.1)
    assert large.item() == pytest.approx(0.1 / math.sqrt(math.pi), rel=0.05)
    # a blur error is all high frequency: the frequency loss ranks a sharp guess above a blurred one
    sharp = torch.rand(1, 1, 32, 32, generator=g)
    blurred = torch.nn.functional.avg_pool2d(sharp, 3, 1, 1, count_include_pad=False)
    assert fft_l1_loss(sharp, sharp).item() == 0.0
    assert fft_l1_loss(blurred.to(torch.bfloat16), sharp.to(torch.bfloat16)).dtype == torch.float32
    with pytest.raises(ValueError, match="norm"):
        fft_l1_loss(pred, target, norm="forward")
    with pytest.raises(ValueError, match="shapes"):
        fft_l1_loss(pred, target[:1])


def test_fft_loss_is_configurable_by_name():
    loss = CompositeLoss(parse_loss_specs({"l1": 1.0, "fft": {"weight": 0.1}}))
    g = torch.Generator().manual_seed(1)
    pred, target = torch.rand(2, 3, 8, 8, generator=g), torch.rand(2, 3, 8, 8, generator=g)
    total, logs = loss(LossInputs(pred=pred, target=target))
    expected = l1_loss(pred, target) + 0.1 * fft_l1_loss(pred, target)
    assert "fft" in logs
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)
    with pytest.raises(ConfigError, match=r"losses\.fft\.norm"):
        CompositeLoss(parse_loss_specs({"fft": {"weight": 1.0, "norm": "sideways"}}))


def test_mean_color_loss_sees_offsets_not_structure():
    g = torch.Generator().manual_seed(2)
    target = torch.rand(2, 3, 16, 12, generator=g)
    offset = torch.tensor([0.01, -0.02, 0.005]).view(1, 3, 1, 1)
    assert mean_color_loss(target + offset, target).item() == pytest.approx(0.035 / 3, rel=1e-5)
    # a zero-mean change (noise minus its own mean) costs nothing, however large
    noise = torch.randn(2, 3, 16, 12, generator=g)
    noise = noise - noise.mean(dim=(2, 3), keepdim=True)
    assert mean_color_loss(target + noise, target).item() == pytest.approx(0.0, abs=1e-6)
    assert l1_loss(target + noise, target).item() > 0.5
    per_sample = mean_color_loss(target + offset * torch.tensor([0.0, 2.0]).view(2, 1, 1, 1),
                                 target, reduction="sample")  # fmt: skip
    assert per_sample.tolist() == pytest.approx([0.0, 0.07 / 3], abs=1e-6)
    with pytest.raises(ValueError, match="B×C×H×W"):
        mean_color_loss(target[0], target[0])


def test_mean_color_loss_is_configurable_with_task_weights():
    spec = {"l1": 1.0, "mean_color": {"weight": 2.0, "task_weights": {"noise": 0}}}
    loss = CompositeLoss(parse_loss_specs(spec))
    g = torch.Generator().manual_seed(3)
    pred, target = torch.rand(2, 3, 8, 8, generator=g), torch.rand(2, 3, 8, 8, generator=g)
    inputs = LossInputs(pred=pred, target=target, task_ids=torch.tensor([0, 1]),
                        task_names=("noise", "blur"))  # fmt: skip
    total, logs = loss(inputs)
    only_blur = mean_color_loss(pred[1:], target[1:])
    assert "mean_color" in logs
    assert total.item() == pytest.approx((l1_loss(pred, target) + 2 * only_blur).item(), rel=1e-5)


def test_psnr_loss_is_minus_each_images_psnr_and_scale_free():
    g = torch.Generator().manual_seed(4)
    target = torch.rand(2, 3, 16, 16, generator=g)
    error = torch.randn(2, 3, 16, 16, generator=g)
    error[1] *= 0.01  # one image with a small error (noise-like), one with a large one
    per = psnr_loss(target + error, target, eps=1e-12, reduction="sample")
    mse = error.pow(2).flatten(1).mean(dim=1)
    assert torch.allclose(per, 10 * torch.log10(mse), atol=1e-4)
    # halving either image's error lowers the loss by the same 6.02 dB: no task drowns another
    for i in range(2):
        smaller = error.clone()
        smaller[i] /= 2
        after = psnr_loss(target + smaller, target, eps=1e-12, reduction="sample")
        assert (per[i] - after[i]).item() == pytest.approx(20 * math.log10(2), abs=1e-3)
    # eps caps an exact image's reward: 1e-6 → 60 dB
    assert psnr_loss(target, target, eps=1e-6).item() == pytest.approx(-60.0, abs=1e-4)
    with pytest.raises(ValueError, match="eps"):
        psnr_loss(target, target, eps=0.0)
    with pytest.raises(ValueError, match="shape"):
        psnr_loss(target, target[:1])
    with pytest.raises(ConfigError, match=r"losses\.psnr\.eps"):
        CompositeLoss({"psnr": {"weight": 1.0, "eps": -1}})


def test_coral_zero_for_identical_statistics_and_positive_otherwise():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(50, 6, generator=g)
    assert coral_loss(x, x).item() == 0.0
    # covariance is invariant to a shift and to row order: still zero
    assert coral_loss(x, x[torch.randperm(50, generator=g)] + 3.0).item() == pytest.approx(
        0.0, abs=1e-6
    )
    y = torch.randn(40, 6, generator=g) * 2.0
    plain, squared = coral_loss(x, y), coral_loss(x, y, squared=True)
    diff = covariance(x) - covariance(y)
    assert plain.item() == pytest.approx(torch.linalg.norm(diff).item() / (4 * 36), rel=1e-5)
    assert squared.item() == pytest.approx((diff**2).sum().item() / (4 * 36), rel=1e-5)
    np.testing.assert_allclose(covariance(x).numpy(), np.cov(x.numpy().T), rtol=1e-4, atol=1e-6)
    # bf16 inputs are promoted to fp32
    assert coral_loss(x.bfloat16(), y.bfloat16()).dtype == torch.float32


def test_composite_loss_and_specs():
    specs = parse_loss_specs({"l1": 1.0, "cscl": {"weight": 0.2, "mode": "normalized"}})
    assert [(s.name, s.weight) for s in specs] == [("l1", 1.0), ("cscl", 0.2)]
    loss = CompositeLoss(specs)
    assert loss.needs_features
    pred, target = torch.rand(4, 3, 8, 8), torch.rand(4, 3, 8, 8)
    feats = torch.randn(4, 16)
    total, logs = loss(LossInputs(pred, target, feats, torch.tensor(10.0), 2, 2))
    assert total.item() == pytest.approx(logs["l1"].item() + 0.2 * logs["cscl"].item(), rel=1e-6)
    assert "cscl_logit_absmax" in logs
    assert not CompositeLoss({"l1": 1.0}).needs_features
    with pytest.raises(ConfigError, match="unknown loss"):
        parse_loss_specs({"l2": 1.0})
    with pytest.raises(ConfigError, match="mode"):
        CompositeLoss({"cscl": {"mode": "clip"}})
    with pytest.raises(ConfigError, match="invalid parameter"):
        CompositeLoss({"l1": {"eps": 1}})


def test_sample_reduction_is_each_samples_mean():
    g = torch.Generator().manual_seed(2)
    pred, target = torch.rand(3, 3, 8, 8, generator=g), torch.rand(3, 3, 8, 8, generator=g)
    for fn in (l1_loss, charbonnier_loss, fft_l1_loss, psnr_loss):
        per = fn(pred, target, reduction="sample")
        assert per.shape == (3,)
        assert per[1].item() == pytest.approx(fn(pred[1:2], target[1:2]).item(), rel=1e-6)
        assert per.mean().item() == pytest.approx(fn(pred, target).item(), rel=1e-6)
        with pytest.raises(ValueError, match="reduction"):
            fn(pred, target, reduction="sum")


@pytest.mark.parametrize("name", ["l1", "charbonnier", "fft", "psnr"])
def test_task_weights_act_like_sampling_proportions(name):
    g = torch.Generator().manual_seed(3)
    pred, target = torch.rand(4, 3, 8, 8, generator=g), torch.rand(4, 3, 8, 8, generator=g)
    ids, names = torch.tensor([0, 0, 1, 1]), ("noise", "blur")
    per = CompositeLoss({name: 1.0}).terms[0]
    plain, _ = per(LossInputs(pred, target))
    # equal weights (explicit or by default) change nothing
    for weights in ({"noise": 2.0, "blur": 2.0}, {"rain": 5.0}):
        loss = CompositeLoss({name: {"weight": 1.0, "task_weights": weights}})
        value, _ = loss(LossInputs(pred, target, task_ids=ids, task_names=(*names, "rain")))
        assert value.item() == pytest.approx(plain.item(), rel=1e-6)
    # blur 3: a blur sample counts three times
    loss = CompositeLoss({name: {"weight": 1.0, "task_weights": {"blur": 3}}})
    value, _ = loss(LossInputs(pred, target, task_ids=ids, task_names=names))
    single = [
        CompositeLoss({name: 1.0})(LossInputs(pred[i : i + 1], target[i : i + 1]))[0]
        for i in range(4)
    ]
    expected = (single[0] + single[1] + 3 * single[2] + 3 * single[3]) / 8
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)
    # weight 0: that task's samples get no gradient
    p = pred.clone().requires_grad_(True)
    loss = CompositeLoss({name: {"weight": 1.0, "task_weights": {"noise": 0}}})
    loss(LossInputs(p, target, task_ids=ids, task_names=names))[0].backward()
    assert p.grad[:2].abs().sum().item() == 0.0 and p.grad[2:].abs().sum().item() > 0.0


def test_task_weights_are_checked():
    loss = CompositeLoss({"l1": {"weight": 1.0, "task_weights": {"blur": 2.0, "fog": 1.0}}})
    loss.check_tasks(["blur", "fog", "noise"])
    with pytest.raises(ConfigError, match=r"losses\.l1\.task_weights: 'fog' not among"):
        loss.check_tasks(["blur", "noise"])
    with pytest.raises(ConfigError, match="no task ids"):
        loss(LossInputs(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4)))
    for bad in ({"blur": -1.0}, {"blur": "x"}, {"blur": True}, [2.0]):
        with pytest.raises(ConfigError, match=r"losses\.l1\.task_weights"):
            CompositeLoss({"l1": {"weight": 1.0, "task_weights": bad}})
