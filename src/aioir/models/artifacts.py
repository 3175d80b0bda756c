"""Saved-model artefacts and the one writer of saved-model folders.

A saved model is a folder: ``model.safetensors`` + ``config.json``
(:func:`~aioir.models.checkpoints.save_pretrained`) and, beside them, the *artefacts* a method
keeps with its weights (UDAIR's source bank, its adapters switch, …) plus free files (a model
card ``README.md``, ``training.json``). A method package registers each artefact once with
:func:`register_artifact`; then

* :func:`save_model` writes a whole folder — weights, config, every artefact the model carries,
  the extra files — into a staging folder beside the target and renames it into place, rolling
  back on failure: the target is either the old folder or the complete new one. Training's
  export, ``aioir bank`` and ``aioir adapt`` all write through it;
* :func:`attach_artifacts` (called by :func:`aioir.models.load_model`) gives a loaded model
  the artefacts its ``config.json`` metadata names.

An artefact is named in the metadata by its ``key``; its value (a file name, a flag, …) is what
``save`` returned. Artefacts belong to the network, so they attach to :func:`unwrap`'s result.

An artefact may also come from a file the user names: one that declares an ``argument`` (UDAIR's
source bank: ``bank``) is attached by ``aioir.load_model(NAME, checkpoint=…, bank=FILE)`` and
the command line's ``--bank FILE`` through :func:`attach_artifact_files`.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from aioir.errors import ConfigError
from aioir.models.wrappers import unwrap
from aioir.plugins import Registry

__all__ = [
    "ARTIFACTS",
    "ModelArtifact",
    "artifact_arguments",
    "attach_artifact_files",
    "attach_artifacts",
    "check_model_output",
    "list_artifacts",
    "register_artifact",
    "save_model",
]


@dataclass(frozen=True)
class ModelArtifact:
    """Something a method keeps beside a model's weights.

    Attributes:
        key: its name in ``config.json``'s metadata (e.g. ``"source_bank"``).
        save: ``save(model, folder) -> value``: write its files into ``folder`` (the staging
            folder) and return the JSON value recorded under ``key``; ``None`` when the model
            carries none (nothing is written or recorded).
        load: ``load(model, folder, value)``: attach it to a loaded model.
        argument: the keyword of :func:`aioir.load_model` (and ``--ARGUMENT`` of the commands
            that load models) that attaches it from a user-named file; ``None``: none.
        load_file: ``load_file(model, path)``: attach it from that file (raise
            :class:`~aioir.errors.CheckpointError` for an unreadable or mismatched one).
    """

    key: str
    save: Callable[[nn.Module, Path], Any]
    load: Callable[[nn.Module, Path, Any], None]
    argument: str | None = None
    load_file: Callable[[nn.Module, Path], None] | None = None


ARTIFACTS: Registry[ModelArtifact] = Registry("model artefact")


def register_artifact(artifact: ModelArtifact) -> ModelArtifact:
    """Register ``artifact`` (a method package does this when it is loaded)."""
    return ARTIFACTS.register(artifact.key, artifact)


def list_artifacts() -> list[ModelArtifact]:
    """The registered artefacts, by key."""
    return list(ARTIFACTS)


def attach_artifacts(model: nn.Module, folder: Path, metadata: Mapping[str, Any]) -> None:
    """Attach every registered artefact that ``metadata`` names (read from ``folder``)."""
    network = unwrap(model)
    for artifact in list_artifacts():
        value = metadata.get(artifact.key)
        if value:
            artifact.load(network, folder, value)


def artifact_arguments() -> dict[str, ModelArtifact]:
    """The artefacts that can be attached from a file, by their ``argument`` keyword."""
    return {a.argument: a for a in list_artifacts() if a.argument and a.load_file is not None}


def attach_artifact_files(
    model: nn.Module, files: Mapping[str, str | os.PathLike[str] | None], label: str = "model"
) -> None:
    """Attach the artefacts ``files`` names (``{argument: path}``, e.g. ``{"bank": PTH}``) to
    the network inside ``model`` (``None`` paths are skipped);
    :class:`~aioir.errors.ConfigError` for an argument no
    registered artefact takes or a model that takes none."""
    known = artifact_arguments()
    network = unwrap(model)
    for argument, path in files.items():
        if path is None:
            continue
        artifact = known.get(argument)
        if artifact is None or artifact.load_file is None:
            names = ", ".join(sorted(known)) or "none"
            raise ConfigError(f"{label}: unknown model file argument {argument!r} (known: {names})")
        artifact.load_file(network, Path(path))


def check_model_output(output: str | os.PathLike[str], overwrite: bool, source: Any = None) -> None:
    """``ConfigError`` unless ``output`` may receive a saved model: not ``source`` (the folder
    the model was read from, when replacing it is not meant) and, without ``overwrite``, not an
    existing non-empty path."""
    out = Path(output)
    if source is not None and out.exists() and out.resolve() == Path(source).resolve():
        raise ConfigError(f"{out}: is the model folder itself; use --in-place --overwrite")
    occupied = out.exists() and (not out.is_dir() or any(out.iterdir()))
    if occupied and not overwrite:
        raise ConfigError(f"{out}: exists; pass --overwrite to replace it")


def save_model(
    model: nn.Module,
    folder: str | os.PathLike[str],
    *,
    metadata: Mapping[str, Any] | None = None,
    files: Mapping[str, bytes | os.PathLike[str]] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the saved-model folder ``folder`` atomically; returns it.

    ``metadata``: free-form JSON for ``config.json`` (default: the model's own
    ``aioir_metadata``, so a loaded model saves back as it came); every registered artefact the
    model carries is written and named in it. ``files``: extra files by name, as bytes or a
    path to copy (a model card, ``training.json``). An existing non-empty ``folder`` needs
    ``overwrite``; it may be the folder the model was loaded from.
    """
    from aioir.models.checkpoints import CONFIG_NAME, WEIGHTS_NAME, save_pretrained

    out = Path(folder)
    check_model_output(out, overwrite)
    meta = dict(getattr(model, "aioir_metadata", {}) if metadata is None else metadata)
    extra = dict(files or {})
    clash = {WEIGHTS_NAME, CONFIG_NAME} & set(extra)
    if clash:
        raise ConfigError(f"{out}: extra files may not replace {', '.join(sorted(clash))}")
    # read the extra files first: they may live in the folder that is about to be replaced
    payloads = {
        name: data if isinstance(data, bytes) else Path(data).read_bytes()
        for name, data in extra.items()
    }
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{out}: cannot create folder ({exc.strerror or exc})") from None
    tmp = out.with_name(f".{out.name}.{secrets.token_hex(4)}.tmp")
    old = out.with_name(f".{out.name}.{secrets.token_hex(4)}.old")
    try:
        tmp.mkdir()
        network = unwrap(model)
        for artifact in list_artifacts():
            meta.pop(artifact.key, None)
            value = artifact.save(network, tmp)
            if value is not None:
                meta[artifact.key] = value
        try:
            meta = json.loads(json.dumps(meta, default=str))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{out}: metadata must be JSON-serialisable: {exc}") from None
        save_pretrained(model, tmp, metadata=meta)
        for name, payload in payloads.items():
            (tmp / name).write_bytes(payload)
        if out.exists() or out.is_symlink():
            os.rename(out, old)
        os.rename(tmp, out)
    except BaseException as exc:  # roll back: the old folder stays as it was
        shutil.rmtree(tmp, ignore_errors=True)
        if (old.exists() or old.is_symlink()) and not out.exists():
            os.rename(old, out)
        if isinstance(exc, OSError):
            raise ConfigError(
                f"{out}: cannot write the model folder ({exc.strerror or exc})"
            ) from None
        raise
    if old.is_dir() and not old.is_symlink():
        shutil.rmtree(old, ignore_errors=True)
    elif old.exists() or old.is_symlink():
        old.unlink()
    return out


def model_description(model: nn.Module) -> str | None:
    """What a loaded saved model is, in the words of the step that made it last: the
    description its outermost wrapper's fit recorded (under the wrapper's name in the
    metadata, e.g. ``aioir fit-filter-bank``'s), else its training run's; ``None`` when neither
    recorded one."""
    metadata = getattr(model, "aioir_metadata", None) or {}
    config = getattr(model, "aioir_config", None) or {}
    names = [w.get("name") for w in config.get("wrappers") or [] if isinstance(w, Mapping)]
    for key in [*reversed(names), "training"]:
        record = metadata.get(key) if isinstance(key, str) else None
        if isinstance(record, Mapping) and record.get("description"):
            return str(record["description"])
    return None
