"""Saved-model artefacts and the one writer of saved-model folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from aioir.errors import ConfigError
from aioir.models import (
    ModelArtifact,
    load_model,
    model_description,
    register_artifact,
    save_model,
)
from aioir.models.artifacts import ARTIFACTS, attach_artifacts
from aioir.models.wrappers import RestorerWrapper, unwrap


@pytest.fixture
def note_artifact():
    """A test artefact: ``model.note`` (a string) saved as ``note.txt``."""

    def save(model: nn.Module, folder: Path) -> str | None:
        note = getattr(model, "note", None)
        if note is None:
            return None
        (folder / "note.txt").write_text(note, encoding="utf-8")
        return "note.txt"

    def load(model: nn.Module, folder: Path, value: str) -> None:
        model.note = (folder / value).read_text(encoding="utf-8")

    artifact = register_artifact(ModelArtifact("test_note", save, load))
    yield artifact
    ARTIFACTS.unregister("test_note")


def _tiny() -> nn.Module:
    torch.manual_seed(0)
    return load_model("restormer-tiny")


def test_a_registered_artifact_is_saved_named_and_attached_on_load(tmp_path, note_artifact):
    model = _tiny()
    model.note = "hello"
    folder = save_model(model, tmp_path / "m", metadata={"k": 1}, files={"README.md": b"card"})
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md", "config.json", "model.safetensors", "note.txt"
    ]  # fmt: skip
    config = json.loads((folder / "config.json").read_text())
    assert config["metadata"] == {"k": 1, "test_note": "note.txt"}
    loaded = load_model(folder)
    assert loaded.note == "hello"
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)


def test_a_model_without_the_artifact_records_nothing(tmp_path, note_artifact):
    folder = save_model(_tiny(), tmp_path / "m")
    assert "test_note" not in json.loads((folder / "config.json").read_text())["metadata"]
    assert not hasattr(load_model(folder), "note")


def test_save_model_refuses_an_occupied_folder_without_overwrite(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "keep.txt").write_text("x")
    with pytest.raises(ConfigError, match="--overwrite"):
        save_model(_tiny(), tmp_path / "m")
    assert (tmp_path / "m" / "keep.txt").read_text() == "x"


def test_a_failing_artifact_rolls_back_to_the_old_folder(tmp_path):
    folder = save_model(_tiny(), tmp_path / "m", files={"README.md": b"old"})

    def broken(model: nn.Module, folder: Path) -> str:
        (folder / "half.bin").write_bytes(b"x")
        raise RuntimeError("disk full")

    register_artifact(ModelArtifact("test_broken", broken, lambda m, f, v: None))
    try:
        with pytest.raises(RuntimeError, match="disk full"):
            save_model(_tiny(), folder, overwrite=True)
    finally:
        ARTIFACTS.unregister("test_broken")
    assert (folder / "README.md").read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no staging folder left


def test_overwriting_the_folder_a_model_came_from_keeps_its_extra_files(tmp_path):
    folder = save_model(_tiny(), tmp_path / "m", files={"README.md": b"card"})
    model = load_model(folder)
    save_model(model, folder, files={"README.md": folder / "README.md"}, overwrite=True)
    assert (folder / "README.md").read_bytes() == b"card"


def test_artifacts_attach_to_the_wrapped_network(tmp_path, note_artifact):
    wrapper = RestorerWrapper(_tiny())
    (tmp_path / "note.txt").write_text("inside")
    attach_artifacts(wrapper, tmp_path, {"test_note": "note.txt"})
    assert unwrap(wrapper).note == "inside" and "note" not in vars(wrapper)


def test_model_description_is_the_outermost_steps():
    """A wrapper's fit describes the whole model; without one, the training run does."""
    model = nn.Identity()
    assert model_description(model) is None
    model.aioir_metadata = {"training": {"description": "the network"}}
    assert model_description(model) == "the network"
    model.aioir_config = {"wrappers": [{"name": "outer_fit"}]}
    assert model_description(model) == "the network"  # the wrapper's fit recorded nothing
    model.aioir_metadata["outer_fit"] = {"description": "network + head"}
    assert model_description(model) == "network + head"


def test_the_shipped_default_is_described_by_its_heads_fit():
    description = model_description(load_model("default"))
    assert description is not None and "filter-bank head" in description
