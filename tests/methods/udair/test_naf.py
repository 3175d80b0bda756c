"""UDAIR on the NAFNet-block U-Net: the degradation side is UDAIR's, and everything built on it
(source bank, TTA, saving, export) works as for the paper's network."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import aioir
from aioir.engine.config import load_config
from aioir.engine.run import train
from aioir.methods.udair import UDAIR, UDAIRNAF, UDAIRBase, UDAIROutput
from aioir.methods.udair.model import TINY_DAM
from aioir.methods.udair.tta import udair_tta
from aioir.models import get_model_info, load_model, save_pretrained
from aioir.models.protocols import DegradationEmbedder
from aioir.restore.adaptation import model_architecture
from aioir.restore.api import Restorer
from aioir.restore.export import export_model
from helpers import make_corpus
from udair_helpers import build_tiny_udair, task_images

CONFIG = Path(__file__).parents[3] / "configs" / "udair" / "cpu-naf.yaml"

#: the part of the state dict that is UDAIR's degradation side (same keys on every backbone)
DEGRADATION = ("dam.", "distrib_adapt", "dam_level", "logit_scale")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return build_tiny_udair(tmp_path_factory.mktemp("naf") / "tiny", name="udair-naf-tiny")


def test_presets_are_udair_networks_on_the_naf_backbone() -> None:
    for name in ("udair-naf-tiny", "udair-naf-small"):
        info = get_model_info(name)
        assert info.architecture == "udair" and info.preset == name.removeprefix("udair-")
    model = load_model("udair-naf-tiny")
    assert isinstance(model, UDAIRNAF) and isinstance(model, UDAIRBase)
    assert not isinstance(model, UDAIR) and isinstance(model, DegradationEmbedder)
    assert model_architecture(model) == "udair"
    with pytest.raises(TypeError, match="'out_channels'"):
        UDAIRNAF(out_channels=1)


def test_degradation_side_has_udair_keys_and_shapes() -> None:
    sizes = {**TINY_DAM, "dim": 8}
    naf = UDAIRNAF(**sizes, num_blocks=(1, 1, 1, 1)).state_dict()
    # the injection and reduction convolutions follow the backbone's bias (NAFNet: biased)
    ref = UDAIR(**sizes, num_blocks=(1, 1, 1, 1), num_refinement_blocks=1, bias=True).state_dict()
    ours = {k: v.shape for k, v in naf.items() if k.startswith(DEGRADATION)}
    assert ours == {k: v.shape for k, v in ref.items() if k.startswith(DEGRADATION)}
    # the fusion blocks are NAF blocks on [x ‖ g], reduced by the same 1×1 convolutions
    assert naf["dpm_level3.conv1.weight"].shape == (2 * 128, 128, 1, 1)
    assert naf["reduce_dpm_level1.weight"].shape == ref["reduce_dpm_level1.weight"].shape


def test_odd_sizes_forward_backward_and_features() -> None:
    torch.manual_seed(0)
    model = load_model("udair-naf-tiny")
    dim = model.dim
    x = torch.rand(2, 3, 37, 51)  # padded to 40×56
    with torch.no_grad():
        y = model(x)
        out = model.forward_features(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert isinstance(out, UDAIROutput)
    torch.testing.assert_close(out.image, y)
    assert out.feature.shape == (2, 4 * dim * 256)
    assert out.g4.shape == (2, 8 * dim, 5, 7) and out.g2.shape == (2, 2 * dim, 20, 28)
    assert out.g3.shape == out.embedding.shape == (2, 4 * dim, 10, 14)
    emb = model.degradation_embedding(x)
    torch.testing.assert_close(emb.embedding, out.embedding)
    assert emb.codebook_size == 64 and emb.codes.shape == (2, 10, 14)

    model.train()
    out = model.forward_features(torch.rand(2, 3, 32, 32))
    (out.image.abs().mean() + out.logit_scale).backward()
    assert model.dam.dim.fc1.weight.grad is not None  # the DAM learns through the fusions
    assert model.intro.weight.grad is not None and model.dpm_level2.conv1.weight.grad is not None
    assert all(p.grad is None for p in model.adapter_parameters())


def test_adapters_on_and_off() -> None:
    model = load_model("udair-naf-tiny")
    with torch.no_grad():  # NAF blocks start as identities: make the fusions see g
        for name, p in model.named_parameters():
            if name.endswith(("beta", "gamma")):
                p.normal_()
    x = torch.rand(1, 3, 24, 32)
    with torch.no_grad():
        plain = model(x)
        model.set_adapters(True)
        adapted = model(x)
        model.set_adapters(False)
        again = model(x)
    assert not torch.allclose(plain, adapted)  # reference adapters: random, not residual
    torch.testing.assert_close(again, plain)
    assert model.context_map_channels == 4 * model.dim


@pytest.mark.filterwarnings("ignore")
def test_save_load_round_trip_and_export(tmp_path) -> None:
    torch.manual_seed(0)
    model = load_model("udair-naf-tiny")
    with torch.no_grad():  # as after training: an untrained model has many equal zero tensors
        for p in model.parameters():  # (NAF β/γ, GCT γ/β), which torch's ONNX exporter shares
            p.add_(0.01 * torch.randn_like(p))  # through Identity nodes onnxruntime rejects
    save_pretrained(model, tmp_path / "saved")
    loaded = load_model(tmp_path / "saved")
    assert isinstance(loaded, UDAIRNAF) and loaded.aioir_config["preset"] == "naf-tiny"
    x = torch.rand(1, 3, 44, 37)
    with torch.no_grad():
        ref = model(x)
        torch.testing.assert_close(loaded(x), ref, rtol=0, atol=0)
    script = torch.jit.load(str(export_model(loaded, tmp_path / "m.pt", "torchscript", size=32)))
    torch.testing.assert_close(script(x), ref, atol=1e-5, rtol=0)
    ort = pytest.importorskip("onnxruntime")
    path = export_model(loaded, tmp_path / "m.onnx", "onnx", size=32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"input": x.numpy()})
    np.testing.assert_allclose(y, ref.numpy(), atol=1e-4)


def test_tta_restores_and_resets(model_dir) -> None:
    model = load_model(model_dir)
    assert isinstance(model, UDAIRNAF) and model.source_bank is not None
    before = {k: v.clone() for k, v in model.state_dict().items()}
    image = task_images(1, 40, seed=6)["lowlight"]
    for mode, task in (("default", None), ("faithful", "haze")):
        tta = udair_tta(mode, task=task, steps=3, tol=-1.0, work_size=32)
        out = Restorer(model, device="cpu", tile=0, tta=tta).restore_tensor(image)
        assert out.shape == image.shape and torch.isfinite(out).all()
        assert tta.reports[0]["steps"] >= 1
        after = model.state_dict()
        assert all(torch.equal(before[k], after[k]) for k in before)
        assert not model.training and not model.adapters_enabled
    plain = aioir.restore(image[0].permute(1, 2, 0).numpy(), model=str(model_dir), tta=True,
                          device="cpu", tile=0)  # fmt: skip
    assert plain.shape == (40, 40, 3)


def test_cpu_naf_config_trains_with_the_source_bank(tmp_path) -> None:
    """configs/udair/cpu-naf.yaml, shrunk to the tiny preset and 32² patches, for 3 steps."""
    corpus = make_corpus(tmp_path / "corpus")
    shipped = load_config(CONFIG)
    assert shipped.model.name == "udair-naf-small"
    assert shipped.trainer.precision == "bf16-mixed" and shipped.trainer.channels_last
    cfg = load_config(CONFIG, [
        f"data.root={corpus}", "model.name=udair-naf-tiny", "data.patch_size=32",
        "data.items_per_task=2", "data.epoch_length=3", "data.val_items_per_task=1",
        "data.val_size=32", "data.val_batch_size=7", "data.num_workers=0",
        "trainer.max_steps=3", "trainer.max_epochs=1", "trainer.num_threads=1",
        "trainer.progress_bar=false", "trainer.logger=csv", "trainer.log_every_n_steps=1",
        "trainer.precision=auto",
        "source_bank.items_per_task=2", "source_bank.batch_size=7",
    ])  # fmt: skip
    res = train(cfg, tmp_path / "run")
    assert res.steps == 3
    model = load_model(res.export_dir)
    assert isinstance(model, UDAIRNAF) and model.source_bank is not None
    assert model.source_bank.task_names == list(cfg.data.tasks)
    assert res.record["source_bank"]["mode"] == "final_pass"  # the extra applied
    assert tuple(model.source_bank.levels["g3"].shape) == (7, 32, 8, 8)  # 7 tasks, dim 8, 32/4
    out = Restorer(model, device="cpu", tile=0, tta=True).restore_tensor(torch.rand(1, 3, 40, 40))
    assert out.shape == (1, 3, 40, 40)


def test_the_filter_bank_wraps_the_naf_variant() -> None:
    from aioir.engine.filter_bank import wrap_in_filter_bank

    torch.manual_seed(0)
    network = load_model("udair-naf-tiny")
    wrapped = wrap_in_filter_bank(network, filters=2, taps=3, hidden=8, seed=0)
    x = torch.rand(1, 3, 30, 41)
    with torch.no_grad():
        maps = network.forward_padded_with_maps(torch.rand(1, 3, 32, 48))
        y = wrapped(x)
    assert maps.features.shape[1] == network.feature_channels == network.dim
    assert maps.context.shape[1] == network.context_map_channels == 4 * network.dim
    assert y.shape == x.shape and torch.isfinite(y).all()
