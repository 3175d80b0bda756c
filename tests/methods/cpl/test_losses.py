"""CPR and its weight-free variant: hand computations, VGG-16 weights from a file, gradients."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import aioir
from aioir.errors import CheckpointError, ConfigError
from aioir.losses import CompositeLoss, LossInputs
from aioir.losses.composite import loss_option_targets, with_loss_option
from aioir.methods.cpl.losses import EncoderFeatures, contrastive_prompt_loss
from aioir.nn.vgg import VGG16Features


def _features(img: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"a": img, "b": F.avg_pool2d(img, 2)}


def _d(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((F.normalize(a, dim=1) - F.normalize(b, dim=1)).abs().mean())


def test_subtractive_form_by_hand() -> None:
    torch.manual_seed(0)
    pred, target = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    negs = torch.rand(3, 2, 3, 8, 8)
    layers = {"a": 0.25, "b": 0.75}
    loss, logs = contrastive_prompt_loss(pred, target, negs, _features, layers)
    push = sum(
        w * sum(_d(_features(pred)[k], _features(negs[j])[k]) for j in range(3)) / 3
        for k, w in layers.items()
    )
    assert loss.item() == pytest.approx(-push, rel=1e-5)
    assert logs["push"].item() == pytest.approx(push, rel=1e-5)
    summed, _ = contrastive_prompt_loss(
        pred, target, negs, _features, layers, negatives_reduction="sum"
    )
    assert summed.item() == pytest.approx(-3 * push, rel=1e-5)


def test_ratio_form_by_hand() -> None:
    torch.manual_seed(1)
    pred, target = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    negs = torch.rand(2, 2, 3, 8, 8)
    layers = {"a": 0.5, "b": 0.5}
    loss, logs = contrastive_prompt_loss(pred, target, negs, _features, layers, form="ratio")
    f = _features
    expected = sum(
        w * _d(f(pred)[k], f(target)[k]) / (sum(_d(f(pred)[k], f(n)[k]) for n in negs) / 2)
        for k, w in layers.items()
    )
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert set(logs) == {"push", "pull"}


def test_unnormalised_features_and_gradient_reaches_only_the_prediction() -> None:
    torch.manual_seed(2)
    pred = torch.rand(1, 3, 8, 8, requires_grad=True)
    negs = torch.rand(1, 1, 3, 8, 8, requires_grad=True)
    loss, _ = contrastive_prompt_loss(
        pred, pred.detach(), negs, _features, {"a": 1.0}, normalize=False
    )
    assert loss.item() == pytest.approx(-float((pred - negs[0]).abs().mean().detach()), rel=1e-6)
    loss.backward()
    assert pred.grad is not None and negs.grad is None  # negatives are constants


def _vgg_file(tmp_path: Path) -> Path:
    """A random-initialised file in torchvision's ``vgg16`` key layout (its ``features``)."""
    torch.manual_seed(3)
    path = tmp_path / "vgg16.pth"
    torch.save(VGG16Features("relu5_3").state_dict(), path)
    return path


def _inputs(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> LossInputs:
    return LossInputs(model(x), y, batch={"input": x}, model=model)


def test_cpr_with_a_vgg16_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _vgg_file(tmp_path)
    loss = CompositeLoss({"l1": 1.0, "cpr": {"weight": 1e-3, "vgg_weights": str(path)}})
    model = aioir.load_model("cpl-tiny").train()
    x, y = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    torch.manual_seed(4)
    inputs = _inputs(model, x, y)
    total, logs = loss(inputs)
    # by hand: the same negatives (same seed), VGG-16 relu1_2/2_2/3_3 from the same file
    vgg = VGG16Features("relu3_3")
    vgg.load_state_dict({k: v for k, v in torch.load(path).items() if k in vgg.state_dict()})
    torch.manual_seed(4)
    model(x)
    negs = model.forward_negatives(x, 4)
    taps = {"relu1_2": 0.2, "relu2_2": 0.3, "relu3_3": 0.5}
    fp, fn = vgg(inputs.pred, taps), [vgg(n, taps) for n in negs]
    push = sum(w * sum(_d(fp[k], f[k]) for f in fn) / 4 for k, w in taps.items())
    assert logs["cpr"].item() == pytest.approx(-push, rel=1e-4)
    assert total.item() == pytest.approx(logs["l1"].item() - 1e-3 * push, rel=1e-5)
    total.backward()
    assert model.prompt1.prompt_param.grad is not None
    # J negative forwards per step
    seen: list[int] = []
    original = type(model).forward_negatives
    monkeypatch.setattr(
        type(model),
        "forward_negatives",
        lambda self, x, num=4, generator=None: seen.append(num) or original(self, x, num),
    )
    loss(_inputs(model, x, y))
    assert seen == [4]


def test_cpr_without_weights_says_what_to_pass(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--vgg-weights PATH") as err:
        CompositeLoss({"l1": 1.0, "cpr": 1e-3})
    assert "\n" not in str(err.value)
    with pytest.raises(CheckpointError, match="VGG-16 weights file not found"):
        CompositeLoss({"cpr": {"vgg_weights": str(tmp_path / "none.pth")}})
    bad = tmp_path / "bad.pth"
    torch.save({"features.0.weight": torch.zeros(1)}, bad)
    with pytest.raises(CheckpointError, match="not a VGG-16 state dict"):
        CompositeLoss({"cpr": {"vgg_weights": str(bad)}})


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"negatives": 0}, "negatives"),
        ({"form": "log"}, "form"),
        ({"layers": {"relu9_9": 1.0}}, "unknown layer"),
        ({"negatives_reduction": "max"}, "negatives_reduction"),
    ],
)
def test_cpr_parameters_checked(params: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        CompositeLoss({"cpr-selffeat": {"weight": 1e-3, **params}})


def test_loss_option_reaches_the_losses_that_take_it() -> None:
    losses = {"l1": 1.0, "cpr": 1e-3}
    assert loss_option_targets(losses, "vgg_weights") == ["cpr"]
    out = with_loss_option(losses, "vgg_weights", "v.pth")
    assert out == {"l1": 1.0, "cpr": {"weight": 1e-3, "vgg_weights": "v.pth"}}
    with pytest.raises(ConfigError, match="no configured loss"):
        with_loss_option({"l1": 1.0, "cpr-selffeat": 1e-3}, "vgg_weights", "v.pth")


def test_selffeat_is_weight_free_and_pushes_only_the_output() -> None:
    torch.manual_seed(5)
    model = aioir.load_model("cpl-tiny").train()
    term = CompositeLoss({"cpr-selffeat": 1.0})
    x, y = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    pred = model(x).detach().requires_grad_(True)
    value, logs = term(LossInputs(pred, y, batch={"input": x}, model=model))
    assert value.item() < 0 and logs["cpr-selffeat_push"].item() > 0
    value.backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.parameters())  # encoder held fixed for the term
    feats = EncoderFeatures.of(model)(x)
    with torch.no_grad():
        e1 = model.encoder_level1(model.patch_embed(x))
    assert torch.allclose(feats["encoder_level1"], e1)


def test_cpr_needs_a_model_with_negatives() -> None:
    term = CompositeLoss({"cpr-selffeat": 1.0})
    model = aioir.load_model("promptir-tiny")
    x = torch.rand(1, 3, 16, 16)
    with pytest.raises(ConfigError, match="no mismatched-prompt negatives"):
        term(LossInputs(model(x), x, batch={"input": x}, model=model))
    with pytest.raises(ConfigError, match="needs the network"):
        term(LossInputs(x, x))
