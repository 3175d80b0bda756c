"""ABAIR's network: presets, gates and adapters, inference modes, tiles, saved models."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import aioir
from aioir.errors import ConfigError
from aioir.methods.abair import ABAIR, GatedTransformerBlock
from aioir.methods.abair.model import LORA_TARGETS
from aioir.models import load_model, save_model
from aioir.nn import MultiLoRAConv2d
from aioir.nn.adapters import lora_parameters
from aioir.restore import Restorer


def trained_like(seed: int = 0) -> ABAIR:
    """``abair-tiny`` with non-zero adapters and a confident estimator (as if trained)."""
    torch.manual_seed(seed)
    model = load_model("abair-tiny")
    with torch.no_grad():
        for p in lora_parameters(model):
            p.normal_(0.0, 0.05)
        assert model.estimator is not None
        model.estimator.head.bias.copy_(torch.tensor([0.0, 0.0, 3.0, 0.0, 0.0]))
    assert isinstance(model, ABAIR)
    return model


def test_presets_parameter_counts_and_components() -> None:
    model = load_model("abair-tiny")
    adapters = sum(p.numel() for p in lora_parameters(model))
    assert sum(p.numel() for p in model.parameters()) == 1_345_030
    assert model.tasks == ["noise", "rain", "haze", "lowlight", "blur"]
    gated = [m for m in model.modules() if isinstance(m, GatedTransformerBlock)]
    assert len(gated) == 4 + 3 + 1 + 3  # encoder + decoder levels, refinement, prompt blocks
    lora = [n for n, m in model.named_modules() if isinstance(m, MultiLoRAConv2d)]
    assert len(lora) == 4 * len(gated) and all(n.endswith(LORA_TARGETS) for n in lora)
    # 5 adapters × Σ r·(in + out) over the adapted layers
    per_layer = sum(
        4 * (m.in_channels + m.out_channels)
        for m in model.modules()
        if isinstance(m, MultiLoRAConv2d)
    )
    assert adapters == 5 * per_layer
    assert aioir.models.get_model_info("abair").parameters == 57_884_389


def test_new_adapters_leave_the_backbone_output_unchanged() -> None:
    torch.manual_seed(0)
    model = load_model("abair-tiny")
    x = torch.rand(2, 3, 20, 28)
    with torch.no_grad():
        soft = model(x)
        model.set_inference_options(adapter_mode="off")
        torch.testing.assert_close(model(x), soft)  # B = 0: adapters start as no-ops


def test_modes_soft_onehot_oracle_and_merge() -> None:
    model = trained_like()
    x = torch.rand(2, 3, 20, 28)
    with torch.no_grad():
        off = model.set_inference_options(adapter_mode="off") or model(x)
        model.set_inference_options(task="haze")
        oracle = model(x)
        model.set_inference_options(adapter_mode="onehot")  # the estimator says haze
        torch.testing.assert_close(model(x), oracle)
        model.set_inference_options(adapter_mode="soft")
        soft = model(x)
        assert not torch.allclose(soft, oracle) and not torch.allclose(oracle, off)
        # one forward with per-sample weights equals the per-image forwards
        model.task_weights = torch.tensor([[0.0, 0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0]])
        mixed = model(x)
        model.task_weights = None
        torch.testing.assert_close(mixed[:1], oracle[:1])
        torch.testing.assert_close(mixed[1:], off[1:])
        # merged deployment equals the unmerged oracle forward
        model.set_inference_options(task="haze")
        model.merge_task("haze")
        torch.testing.assert_close(model(x), oracle, atol=1e-5, rtol=1e-5)
        model.unmerge()
    probs = model.task_probabilities(model.estimator.last_logits)
    assert probs.shape == (2, 5) and torch.allclose(probs.sum(1), torch.ones(2))
    lines = model.describe_decisions()
    assert len(lines) == 2 and "haze=" in lines[0] and lines[0].endswith("oracle haze")


def test_bad_options_are_config_errors() -> None:
    model = load_model("abair-tiny")
    with pytest.raises(ConfigError, match="no adapter for task 'snow'"):
        model.set_inference_options(task="snow")
    with pytest.raises(ConfigError, match="adapter mode must be"):
        model.set_inference_options(adapter_mode="max")
    with pytest.raises(ConfigError, match="needs a task"):
        model.set_inference_options(adapter_mode="oracle")
    with pytest.raises(ConfigError, match="only with the oracle"):
        model.set_inference_options(adapter_mode="soft", task="haze")


def test_tiles_share_the_whole_image_estimate() -> None:
    model = trained_like(1)
    image = torch.rand(1, 3, 72, 64)
    Restorer(model, tile=0, allow_untrained=True)(image)
    first = model.describe_decisions()
    probs = model.task_probabilities(model.estimator.last_logits)
    restorer = Restorer(model, tile=40, tile_overlap=8, allow_untrained=True)
    tiled = restorer(image)
    assert model.describe_decisions() == first  # decided once, on the whole image
    model.task_weights = probs  # the whole image's blend given explicitly to every tile
    torch.testing.assert_close(restorer(image), tiled)


def test_forward_features_with_segmentation_head() -> None:
    model = load_model("abair-tiny", tasks=[], segmentation_classes=6)
    assert model.estimator is None
    out = model.forward_features(torch.rand(2, 3, 20, 28))
    assert out.image.shape == (2, 3, 20, 28) and out.task_logits is None
    assert out.segmentation is not None and out.segmentation.shape == (2, 6, 20, 28)
    assert out.feature is out.segmentation
    model.drop_segmentation_head()
    assert model.segmentation_head is None
    assert "segmentation_classes" not in model.aioir_config["overrides"]
    assert not any(k.startswith("segmentation_head") for k in model.state_dict())


def test_saved_model_keeps_adapters_estimator_tasks_and_mode(tmp_path: Path) -> None:
    model = trained_like(2)
    model.add_task("jpeg")
    model.set_inference_options(adapter_mode="onehot")
    save_model(model, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert isinstance(loaded, ABAIR) and loaded.tasks == [*model.tasks]
    assert loaded.adapter_mode == "onehot"
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k
    model.merge_task("haze")
    with pytest.raises(ConfigError, match="merged"):
        save_model(model, tmp_path / "merged")
