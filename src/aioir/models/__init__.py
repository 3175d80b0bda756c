"""Restoration models and the registry that names them.

>>> import aioir
>>> model = aioir.load_model("default")              # the shipped default model
>>> model = aioir.load_model("udair", preset="tiny")  # = "udair-tiny": random weights, eval mode
>>> model = aioir.load_model("promptir", checkpoint="model.ckpt")   # official Lightning ckpt
>>> model = aioir.load_model("runs/udair-5task")       # our own save_pretrained() output
>>> [m.name for m in aioir.list_models()]

Every model is a plain ``nn.Module`` whose ``forward(x)`` maps a ``B×3×H×W`` image in [0, 1] of any
size to the restored image of the same size (inputs are padded to ``model.size_multiple``
internally). A saved model may be a network inside wrappers (:mod:`aioir.models.wrappers`, e.g.
the filter bank, :class:`FilterBankRestorer`): ``load_model`` rebuilds them;
:func:`~aioir.models.wrappers.unwrap` gives the network.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from aioir.errors import ConfigError
from aioir.models import dark_channel as _dark_channel  # noqa: F401  (registers presets)
from aioir.models import exposure as _exposure  # noqa: F401  (registers presets)
from aioir.models import nafnet as _nafnet  # noqa: F401  (registers presets)
from aioir.models import prior_refiner as _prior_refiner  # noqa: F401  (registers presets)
from aioir.models import residual_cnn as _residual_cnn  # noqa: F401  (registers presets)
from aioir.models import restormer as _restormer  # noqa: F401  (registers presets)
from aioir.models.artifacts import (
    ModelArtifact,
    artifact_arguments,
    attach_artifact_files,
    attach_artifacts,
    model_description,
    register_artifact,
    save_model,
)
from aioir.models.checkpoints import (
    load_state_dict_into,
    read_pretrained_config,
    read_state_dict,
    save_pretrained,
    shipped_weights,
    upgrade_config,
    upgrade_state_dict,
)
from aioir.models.dark_channel import DarkChannelPrior
from aioir.models.exposure import AdaptiveGamma
from aioir.models.filter_bank import FilterBankRestorer, reject_legacy_overrides
from aioir.models.nafnet import NAFNet
from aioir.models.prior_refiner import PriorRefiner
from aioir.models.registry import (
    ModelInfo,
    create_model,
    get_model_info,
    is_registered,
    list_models,
    mark_untrained,
    register_model,
    registered_name,
    untrained_name,
)
from aioir.models.residual_cnn import ResidualCNN
from aioir.models.restormer import Restormer
from aioir.models.wrappers import RestorerWrapper, unwrap, wrap_model

__all__ = [
    "AdaptiveGamma",
    "DarkChannelPrior",
    "FilterBankRestorer",
    "ModelArtifact",
    "ModelInfo",
    "NAFNet",
    "PriorRefiner",
    "ResidualCNN",
    "RestorerWrapper",
    "Restormer",
    "create_model",
    "get_model_info",
    "list_models",
    "load_model",
    "model_description",
    "register_artifact",
    "register_model",
    "save_model",
    "save_pretrained",
    "untrained_name",
    "unwrap",
]

#: the name of the shipped default model (``aioir/weights/default``; ``--model default``)
DEFAULT_MODEL = "default"


def load_model(
    name_or_path: str | Path,
    checkpoint: str | Path | None = None,
    *,
    preset: str | None = None,
    strict: bool = True,
    allow_pickle: bool = False,
    **overrides: Any,
) -> nn.Module:
    """Build a model by registered name, optionally loading weights; or load a saved model.

    Args:
        name_or_path: ``"default"`` (the shipped default model, as ``--model default``), a
            registered name (``"udair"`` = paper preset, ``"udair-tiny"``, ``"promptir"``,
            ``"restormer-small"``, …; see :func:`list_models`) or the path of a model saved
            with :func:`save_pretrained` (directory or ``.safetensors`` file).
        checkpoint: weights for a *named* model: our safetensors, a raw state dict, a
            PyTorch-Lightning ``.ckpt`` (``net.`` prefix, e.g. official PromptIR or the UDAIR
            code) or a BasicSR file (``params``). Always read on the CPU.
        preset: a preset of the named architecture: ``load_model("udair", preset="tiny")`` is
            ``load_model("udair-tiny")`` (``"paper"`` is the bare name).
        strict: require every key to match (shape mismatches always raise).
        allow_pickle: allow a full (unsafe) unpickle for trusted ``.ckpt``/``.pth`` files that
            a weights-only load refuses.
        **overrides: keyword arguments replacing the preset's constructor arguments (of the
            network, for a saved model inside wrappers) — except the keywords of artefacts
            that come from a file (:func:`aioir.models.artifacts.artifact_arguments`): UDAIR's
            ``bank=FILE`` attaches a source bank (aioir's ``bank.safetensors`` or the authors'
            ``source_domain_distrib.pth``), replacing a saved model's own.

    A registered name without ``checkpoint`` has random weights: fine to train or inspect, but
    :func:`aioir.restore` / :class:`aioir.restore.Restorer` refuse to restore with it (as
    ``aioir restore`` does) unless ``allow_untrained=True`` or weights are loaded into it first
    (:func:`~aioir.models.registry.untrained_name`).

    A saved model comes back inside the wrappers its config lists (format 1's
    ``overrides.filter_bank`` translated into the filter-bank wrapper) and its network gets the
    artefacts its metadata names (:mod:`aioir.models.artifacts`, e.g. a source bank as
    ``unwrap(model).source_bank``). A registered name builds the plain network: the old
    ``filter_bank=K`` argument raises :class:`aioir.ConfigError` (wrap the network with
    :class:`FilterBankRestorer`, or load a saved filter-bank model). Returns the model in eval
    mode. Raises :class:`aioir.ConfigError` for an unknown name or preset or a bad override and
    :class:`aioir.CheckpointError` for an unreadable or mismatched checkpoint.
    """
    reject_legacy_overrides(overrides)
    name = str(name_or_path)
    if preset is not None:
        name = _with_preset(name, preset)
    files = {k: overrides.pop(k) for k in list(overrides) if k in artifact_arguments()}
    if is_registered(name):
        info = get_model_info(name)
        model = create_model(info.name, **overrides)
        if checkpoint is not None:
            state = read_state_dict(checkpoint, allow_pickle=allow_pickle)
            load_state_dict_into(model, state, checkpoint, info.architecture, strict)
        else:
            mark_untrained(model, info.name)
        attach_artifact_files(model, files, name)
        return model.eval()
    if name.strip() == DEFAULT_MODEL:  # before a path: as ``--model default``
        shipped = shipped_weights(DEFAULT_MODEL)
        if shipped is None:
            raise ConfigError("no default model is shipped with this installation of aioir")
        if checkpoint is not None:
            raise ConfigError("the default model carries its own weights; pass no checkpoint=")
        name_or_path = shipped
    path = Path(name_or_path)
    if not path.exists():
        # raises ConfigError with close matches
        get_model_info(name)
    if checkpoint is not None:
        raise ConfigError(
            f"{path}: a saved model carries its own weights; pass checkpoint= only with a name"
        )
    saved = read_pretrained_config(path)
    config = upgrade_config(saved)
    architecture, saved_preset = config["architecture"], config.get("preset", "paper")
    network = create_model(
        registered_name(architecture, saved_preset), **{**config["overrides"], **overrides}
    )
    model = wrap_model(network, config["wrappers"])
    state = upgrade_state_dict(read_state_dict(path), saved)
    load_state_dict_into(model, state, path, architecture, strict)
    model.aioir_metadata = dict(config.get("metadata", {}))
    # the artefacts saved beside the weights (a method's, e.g. UDAIR's source bank)
    attach_artifacts(model, path if path.is_dir() else path.parent, model.aioir_metadata)
    attach_artifact_files(model, files, str(path))
    return model.eval()


def _with_preset(name: str, preset: str) -> str:
    """The registered name of ``preset`` of the architecture ``name`` names (ConfigError for a
    path, an unknown preset, or a name that already names another preset)."""
    if not is_registered(name):
        if name.strip() == DEFAULT_MODEL or Path(name).exists():
            raise ConfigError(f"preset= applies to a registered model name, not to {name!r}")
        get_model_info(name)  # unknown name: ConfigError with close matches
    info = get_model_info(name)
    key = preset.strip().lower()
    if info.preset not in ("paper", key):
        raise ConfigError(
            f"{name!r} already names the {info.preset!r} preset; pass "
            f"load_model({info.architecture!r}, preset={preset!r})"
        )
    presets = [i.preset for i in list_models(info.architecture)]
    if key not in presets:
        raise ConfigError(
            f"model {info.architecture!r} has no preset {preset!r} (presets: {', '.join(presets)})"
        )
    return registered_name(info.architecture, key)
