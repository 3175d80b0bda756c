"""--model / --checkpoint resolution: default, names, paths, refusing random weights."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from aioir.errors import CheckpointError, ConfigError
from aioir.models import load_model, save_pretrained
from aioir.restore import resolve
from aioir.restore.resolve import resolve_model, shipped_weights

NAME = "restormer-tiny"


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[nn.Module, object]:
    """A tiny model with non-default weights, saved in our format."""
    model = load_model(NAME)
    torch.manual_seed(3)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    save_pretrained(model, path)
    return model, path


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_default_without_shipped_weights_is_a_one_line_error(monkeypatch):
    monkeypatch.setattr(resolve, "shipped_weights", lambda name: None)
    with pytest.raises(ConfigError) as exc:
        resolve_model("default")
    assert str(exc.value) == "no default model is shipped yet; pass --model NAME_OR_PATH"


def test_default_uses_the_shipped_file(monkeypatch, trained):
    model, path = trained
    monkeypatch.setattr(
        resolve, "shipped_weights", lambda name: path if name == "default" else None
    )
    loaded = resolve_model("default")
    assert _same_weights(loaded, model) and not loaded.training


def test_registered_name_without_weights_is_refused(monkeypatch):
    monkeypatch.setattr(resolve, "shipped_weights", lambda name: None)
    with pytest.raises(ConfigError, match=r"has no trained weights.*--allow-untrained"):
        resolve_model(NAME)
    model = resolve_model(NAME, allow_untrained=True)
    assert not model.training and model.size_multiple == 8


def test_registered_name_with_checkpoint(trained):
    model, path = trained
    assert _same_weights(resolve_model(NAME, path), model)


def test_registered_name_with_shipped_weights(monkeypatch, trained):
    model, path = trained
    monkeypatch.setattr(resolve, "shipped_weights", lambda name: path if name == NAME else None)
    assert _same_weights(resolve_model(NAME), model)


def test_saved_model_path(trained):
    model, path = trained
    assert _same_weights(resolve_model(path), model)
    assert _same_weights(resolve_model(str(path)), model)


def test_missing_path_and_unknown_name(tmp_path):
    with pytest.raises(ConfigError, match="no such model file"):
        resolve_model(str(tmp_path / "nope.safetensors"))
    with pytest.raises(ConfigError, match="did you mean"):
        resolve_model("restormer-tinny")


def test_bad_checkpoint_is_a_checkpoint_error(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError):
        resolve_model(NAME, bad)
    with pytest.raises(CheckpointError):
        resolve_model(bad)


def test_module_passes_through():
    net = nn.Conv2d(3, 3, 1).train()
    assert resolve_model(net) is net and not net.training
    with pytest.raises(ConfigError):
        resolve_model(net, "x.safetensors")


def test_shipped_weights_is_none_for_an_unknown_name():
    assert shipped_weights("no-such-model-anywhere") is None


def test_the_default_model_ships_as_a_udair_folder_with_its_source_bank():
    folder = shipped_weights("default")
    assert folder is not None and folder.is_dir()
    assert (folder / "model.safetensors").stat().st_size <= 20 * 2**20  # the size cap
    model = resolve_model("default")  # v4: UDAIR inside the filter-bank wrapper
    assert type(model).__name__ == "FilterBankRestorer"
    assert type(model.restorer).__name__ == "UDAIR"
    assert model.restorer.source_bank.task_names == [
        "noise", "rain", "haze", "lowlight", "blur", "underwater", "clean",
    ]  # fmt: skip
    assert not model.training


def test_a_wrapper_around_a_random_network_is_refused():
    """The random weights of ``load_model(NAME)`` are refused inside a wrapper too."""
    from aioir.models import FilterBankRestorer

    wrapped = FilterBankRestorer(load_model("udair-tiny"), filters=2, taps=3, hidden=4)
    with pytest.raises(ConfigError, match=r"aioir.load_model\('udair-tiny'\) without a"):
        resolve_model(wrapped)
    assert resolve_model(wrapped, allow_untrained=True) is wrapped
