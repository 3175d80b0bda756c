"""VGG-16 feature stack: torchvision's key layout, taps, loading from a local file."""

from __future__ import annotations

import pytest
import torch

from aioir.errors import CheckpointError
from aioir.nn.vgg import (
    VGG16_LAYERS,
    VGG16Features,
    load_vgg16_features,
    vgg16_state_dict_shapes,
)


def _torchvision_layout_file(path, seed: int = 0) -> dict[str, torch.Tensor]:
    """A random-initialised file with every key and shape of torchvision's ``vgg16``."""
    g = torch.Generator().manual_seed(seed)
    state = {
        k: torch.randn(shape, generator=g) * 0.05 for k, shape in vgg16_state_dict_shapes().items()
    }
    torch.save(state, path)
    return state


def test_layout_matches_torchvision_vgg16():
    shapes = vgg16_state_dict_shapes()
    conv_indices = sorted({int(k.split(".")[1]) for k in shapes if k.startswith("features.")})
    assert conv_indices == [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
    assert shapes["features.0.weight"] == (64, 3, 3, 3)
    assert shapes["features.28.weight"] == (512, 512, 3, 3)
    assert len(shapes) == 32  # 13 convs + 3 linears, weight and bias each
    assert sum(torch.Size(s).numel() for s in shapes.values()) == 138_357_544


def test_truncated_stack_is_features_up_to_the_tap():
    net = VGG16Features(last="relu3_3")
    assert len(net.features) == 16  # torchvision's features[:16]
    out = net(torch.rand(1, 3, 32, 32), taps=["relu1_2", "relu2_2", "relu3_3"])
    assert out["relu1_2"].shape == (1, 64, 32, 32)
    assert out["relu2_2"].shape == (1, 128, 16, 16)
    assert out["relu3_3"].shape == (1, 256, 8, 8)
    with pytest.raises(ValueError, match="deeper"):
        net(torch.rand(1, 3, 32, 32), taps=["relu4_3"])


def test_loads_a_full_torchvision_file_and_computes_with_its_weights(tmp_path):
    state = _torchvision_layout_file(tmp_path / "vgg16.pth")
    net = load_vgg16_features(tmp_path / "vgg16.pth", last="relu1_2", normalize_input=False)
    assert torch.equal(net.features[2].weight, state["features.2.weight"])
    x = torch.rand(1, 3, 8, 8)
    h = torch.relu(
        torch.nn.functional.conv2d(
            x, state["features.0.weight"], state["features.0.bias"], padding=1
        )
    )
    h = torch.relu(
        torch.nn.functional.conv2d(
            h, state["features.2.weight"], state["features.2.bias"], padding=1
        )
    )
    torch.testing.assert_close(net(x)["relu1_2"], h)


def test_frozen_but_differentiable_in_its_input():
    net = VGG16Features(last="relu2_2")
    net.train()
    assert not net.training
    assert not any(p.requires_grad for p in net.parameters())
    x = torch.rand(1, 3, 16, 16, requires_grad=True)
    net(x)["relu2_2"].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_missing_or_wrong_files_are_one_line_checkpoint_errors(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_vgg16_features(tmp_path / "absent.pth")
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, tmp_path / "part.pth")
    with pytest.raises(CheckpointError, match="torchvision's layout") as info:
        load_vgg16_features(tmp_path / "part.pth")
    assert "\n" not in str(info.value)
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        load_vgg16_features(tmp_path / "junk.pth")


def test_tap_names_cover_every_relu_before_a_pool_or_conv():
    net = VGG16Features()
    for index in VGG16_LAYERS.values():
        assert isinstance(net.features[index], torch.nn.ReLU)
