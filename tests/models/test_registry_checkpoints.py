"""Registry, load_model, our safetensors format and the reference checkpoint formats."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import aioir
from aioir.errors import CheckpointError, ConfigError
from aioir.models import ModelInfo, get_model_info, list_models, save_pretrained


def test_list_models_records() -> None:
    infos = list_models()
    assert all(isinstance(i, ModelInfo) for i in infos)
    names = {i.name for i in infos}
    for arch in ("restormer", "promptir", "udair"):
        assert {arch, f"{arch}-small", f"{arch}-tiny"} <= names
    info = get_model_info("UDAIR_paper")
    assert (info.name, info.architecture, info.preset) == ("udair", "udair", "paper")
    assert info.parameters == 11_237_760 and info.description
    assert [i.name for i in list_models("promptir")] == [
        "promptir",
        "promptir-small",
        "promptir-tiny",
    ]
    assert aioir.list_models is list_models


def test_unknown_name_and_bad_override() -> None:
    with pytest.raises(ConfigError, match="udair"):
        aioir.load_model("udiar-tiny")
    with pytest.raises(ConfigError, match="no_such_option"):
        aioir.load_model("udair-tiny", no_such_option=1)


def test_load_model_default_is_the_shipped_model() -> None:
    """``--model default`` works, so ``aioir.load_model("default")`` does too (issue 22, 6)."""
    model = aioir.load_model("default")
    assert type(model).__name__ == "FilterBankRestorer" and not model.training
    assert model.restorer.aioir_config["preset"] == "small"
    assert aioir.models.untrained_name(model) is None
    with pytest.raises(ConfigError, match="carries its own weights"):
        aioir.load_model("default", checkpoint="x.safetensors")


def test_load_model_preset_argument() -> None:
    tiny = aioir.load_model("udair", preset="tiny")
    assert tiny.aioir_config == {"architecture": "udair", "preset": "tiny", "overrides": {}}
    assert aioir.load_model("udair-paper", preset="small").aioir_config["preset"] == "small"
    assert aioir.load_model("restormer", preset="tiny", dim=8).patch_embed.proj.out_channels == 8
    with pytest.raises(ConfigError, match=r"no preset 'huge' \(presets: paper, small, tiny\)"):
        aioir.load_model("restormer", preset="huge")
    with pytest.raises(ConfigError, match=r"already names the 'small' preset"):
        aioir.load_model("udair-small", preset="tiny")
    with pytest.raises(ConfigError, match="registered model name"):
        aioir.load_model("default", preset="tiny")


def test_a_named_model_without_checkpoint_is_marked_untrained(tmp_path: Path) -> None:
    model = aioir.load_model("restormer-tiny")
    assert aioir.models.untrained_name(model) == "restormer-tiny"
    path = tmp_path / "m.safetensors"
    save_pretrained(model, path)
    assert aioir.models.untrained_name(aioir.load_model(path)) is None  # saved: the user's
    assert aioir.models.untrained_name(aioir.load_model("restormer-tiny", checkpoint=path)) is None


def test_overrides_apply() -> None:
    model = aioir.load_model("restormer-tiny", dim=8)
    assert model.patch_embed.proj.out_channels == 8
    assert model.aioir_config == {
        "architecture": "restormer",
        "preset": "tiny",
        "overrides": {"dim": 8},
    }


@pytest.mark.parametrize("single_file", [False, True])
def test_safetensors_round_trip(tmp_path: Path, single_file: bool) -> None:
    torch.manual_seed(0)
    model = aioir.load_model("udair-tiny", adapter_residual=True)
    target = tmp_path / ("m.safetensors" if single_file else "run")
    weights = save_pretrained(model, target, {"train": "5-task", "psnr": 30.1})
    assert weights.is_file()
    if not single_file:
        config = json.loads((target / "config.json").read_text())
        assert config["architecture"] == "udair" and config["preset"] == "tiny"
        assert config["overrides"] == {"adapter_residual": True}
    loaded = aioir.load_model(target)
    assert loaded.aioir_metadata == {"train": "5-task", "psnr": 30.1}
    assert loaded.distrib_adapt2.residual
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), k
    x = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), loaded(x))
    # the file also loads as a checkpoint of the named model
    again = aioir.load_model("udair-tiny", checkpoint=weights, adapter_residual=True)
    assert torch.equal(again.output.weight, model.output.weight)
    with pytest.raises(ConfigError):
        aioir.load_model(target, checkpoint=weights)


def test_save_requires_registry_config(tmp_path: Path) -> None:
    from aioir.models import Restormer

    with pytest.raises(ConfigError):
        save_pretrained(Restormer(dim=8, num_blocks=(1, 1, 1, 1)), tmp_path / "x")


def _lightning_ckpt(model: torch.nn.Module, path: Path) -> None:
    state = {f"net.{k}": v for k, v in model.state_dict().items()}
    state["loss_fn.dummy"] = torch.zeros(1)  # other LightningModule members are ignored
    torch.save(
        {
            "epoch": 3,
            "global_step": 10,
            "pytorch-lightning_version": "1.9.0",
            "state_dict": state,
            "optimizer_states": [{"state": {}, "param_groups": [{"lr": 1e-4, "params": [0]}]}],
            "best_psnr": np.float64(31.5) + np.mean([0.0]),  # numpy scalar, as UDAIR's code saves
        },
        path,
    )


@pytest.mark.parametrize("name", ["promptir-tiny", "udair-tiny"])
def test_lightning_checkpoint_with_net_prefix(tmp_path: Path, name: str) -> None:
    torch.manual_seed(1)
    source = aioir.load_model(name)
    path = tmp_path / "epoch=3.ckpt"
    _lightning_ckpt(source, path)
    model = aioir.load_model(name, checkpoint=path)
    for k, v in source.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k


def test_raw_and_basicsr_state_dicts(tmp_path: Path) -> None:
    torch.manual_seed(2)
    source = aioir.load_model("restormer-tiny")
    torch.save(source.state_dict(), tmp_path / "raw.pth")
    torch.save({"params": source.state_dict()}, tmp_path / "basicsr.pth")
    torch.save({"module." + k: v for k, v in source.state_dict().items()}, tmp_path / "ddp.pth")
    for file in ("raw.pth", "basicsr.pth", "ddp.pth"):
        model = aioir.load_model("restormer-tiny", checkpoint=tmp_path / file)
        assert torch.equal(model.output.weight, source.output.weight), file


def test_checkpoints_with_ema_read_as_the_ema(tmp_path: Path) -> None:
    """Our training checkpoints (``ema_state_dict`` over the raw trainable parameters) and
    BasicSR's (``params_ema``) read as their EMA weights unless ``ema=False``."""
    from aioir.models.checkpoints import EMA_KEY, read_state_dict

    torch.manual_seed(3)
    raw, averaged = aioir.load_model("restormer-tiny"), aioir.load_model("restormer-tiny")
    raw_state = {f"model.{k}": v for k, v in raw.state_dict().items()}
    ema = {f"model.{k}": p.detach() for k, p in averaged.named_parameters() if "output" in k}
    torch.save({"state_dict": raw_state, EMA_KEY: ema, "global_step": 5}, tmp_path / "last.ckpt")
    model = aioir.load_model("restormer-tiny", checkpoint=tmp_path / "last.ckpt")
    assert torch.equal(model.output.weight, averaged.output.weight)  # an EMA parameter
    assert torch.equal(model.patch_embed.proj.weight, raw.patch_embed.proj.weight)  # not in it
    as_raw = read_state_dict(tmp_path / "last.ckpt", ema=False)
    assert torch.equal(as_raw["output.weight"], raw.output.weight)

    basicsr = {"params": raw.state_dict(), "params_ema": averaged.state_dict()}
    torch.save(basicsr, tmp_path / "basicsr.pth")
    state = read_state_dict(tmp_path / "basicsr.pth")
    assert torch.equal(state["output.weight"], averaged.output.weight)
    state = read_state_dict(tmp_path / "basicsr.pth", ema=False)
    assert torch.equal(state["output.weight"], raw.output.weight)


def test_mismatched_checkpoint_names_file_and_keys(tmp_path: Path) -> None:
    state = aioir.load_model("udair-tiny").state_dict()
    state.pop("dam.gct.alpha")
    state["extra.weight"] = torch.zeros(1)
    path = tmp_path / "bad.pth"
    torch.save({"state_dict": {f"net.{k}": v for k, v in state.items()}}, path)
    with pytest.raises(CheckpointError) as err:
        aioir.load_model("udair-tiny", checkpoint=path)
    message = str(err.value)
    assert "bad.pth" in message and "dam.gct.alpha" in message and "extra.weight" in message
    model = aioir.load_model("udair-tiny", checkpoint=path, strict=False)
    assert torch.equal(model.output.weight, state["output.weight"])
    with pytest.raises(CheckpointError, match="shape mismatch"):
        aioir.load_model("restormer-tiny", checkpoint=path, strict=False)


def test_wrong_architecture_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "promptir.pth"
    torch.save(aioir.load_model("promptir-tiny").state_dict(), path)
    with pytest.raises(CheckpointError, match="unexpected keys: noise_level1"):
        aioir.load_model("restormer-tiny", checkpoint=path)


class _Custom:  # an arbitrary Python object a weights-only load must refuse
    pass


def test_pickled_objects_need_explicit_trust(tmp_path: Path) -> None:
    state = aioir.load_model("restormer-tiny").state_dict()
    path = tmp_path / "obj.ckpt"
    torch.save({"state_dict": state, "hparams": _Custom()}, path)
    with pytest.raises(CheckpointError, match="allow_pickle"):
        aioir.load_model("restormer-tiny", checkpoint=path)
    model = aioir.load_model("restormer-tiny", checkpoint=path, allow_pickle=True)
    assert torch.equal(model.output.weight, state["output.weight"])


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no such file"):
        aioir.load_model("restormer-tiny", checkpoint=tmp_path / "nope.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"junk\.pth"):
        aioir.load_model("restormer-tiny", checkpoint=junk)
    stray = tmp_path / "stray.safetensors"
    from safetensors.torch import save_file

    save_file({"a": torch.zeros(1)}, str(stray))
    with pytest.raises(CheckpointError, match="checkpoint="):
        aioir.load_model(stray)


def test_explicit_key_map_is_applied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from aioir.models import checkpoints

    state = aioir.load_model("restormer-tiny").state_dict()
    state["final_conv.weight"] = state.pop("output.weight")
    path = tmp_path / "renamed.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=r"final_conv\.weight"):
        aioir.load_model("restormer-tiny", checkpoint=path)
    monkeypatch.setitem(checkpoints.KEY_MAPS, "restormer", {"final_conv.weight": "output.weight"})
    model = aioir.load_model("restormer-tiny", checkpoint=path)
    assert torch.equal(model.output.weight, state["final_conv.weight"])
