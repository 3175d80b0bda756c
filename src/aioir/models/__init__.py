"""Restoration models and the registry that names them.

>>> import aioir
>>> model = aioir.load_model("udair-tiny")            # random weights, eval mode
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
from aioir.models import nafnet as _nafnet  # noqa: F401  (registers presets)
from aioir.models import restormer as _restormer  # noqa: F401  (registers presets)
from aioir.models.artifacts import (
    ModelArtifact,
    attach_artifacts,
    register_artifact,
    save_model,
)
from aioir.models.checkpoints import (
    load_state_dict_into,
    read_pretrained_config,
    read_state_dict,
    save_pretrained,
    upgrade_config,
    upgrade_state_dict,
)
from aioir.models.filter_bank import FilterBankRestorer, reject_legacy_overrides
from aioir.models.nafnet import NAFNet
from aioir.models.registry import (
    ModelInfo,
    create_model,
    get_model_info,
    is_registered,
    list_models,
    register_model,
)
from aioir.models.restormer import Restormer
from aioir.models.wrappers import RestorerWrapper, unwrap, wrap_model

__all__ = [
    "FilterBankRestorer",
    "ModelArtifact",
    "ModelInfo",
    "NAFNet",
    "RestorerWrapper",
    "Restormer",
    "create_model",
    "get_model_info",
    "list_models",
    "load_model",
    "register_artifact",
    "register_model",
    "save_model",
    "save_pretrained",
    "unwrap",
]


def load_model(
    name_or_path: str | Path,
    checkpoint: str | Path | None = None,
    *,
    strict: bool = True,
    allow_pickle: bool = False,
    **overrides: Any,
) -> nn.Module:
    """Build a model by registered name, optionally loading weights; or load a saved model.

    Args:
        name_or_path: a registered name (``"udair"`` = paper preset, ``"udair-tiny"``,
            ``"promptir"``, ``"restormer-small"``, …; see :func:`list_models`) or the path of a
            model saved with :func:`save_pretrained` (directory or ``.safetensors`` file).
        checkpoint: weights for a *named* model: our safetensors, a raw state dict, a
            PyTorch-Lightning ``.ckpt`` (``net.`` prefix, e.g. official PromptIR or the UDAIR
            code) or a BasicSR file (``params``). Always read on the CPU.
        strict: require every key to match (shape mismatches always raise).
        allow_pickle: allow a full (unsafe) unpickle for trusted ``.ckpt``/``.pth`` files that
            a weights-only load refuses.
        **overrides: keyword arguments replacing the preset's constructor arguments (of the
            network, for a saved model inside wrappers).

    A saved model comes back inside the wrappers its config lists (format 1's
    ``overrides.filter_bank`` translated into the filter-bank wrapper) and its network gets the
    artefacts its metadata names (:mod:`aioir.models.artifacts`, e.g. a source bank as
    ``unwrap(model).source_bank``). A registered name builds the plain network: the old
    ``filter_bank=K`` argument raises :class:`aioir.ConfigError` (wrap the network with
    :class:`FilterBankRestorer`, or load a saved filter-bank model). Returns the model in eval
    mode. Raises :class:`aioir.ConfigError` for an unknown name or a bad override and
    :class:`aioir.CheckpointError` for an unreadable or mismatched checkpoint.
    """
    reject_legacy_overrides(overrides)
    name = str(name_or_path)
    if is_registered(name):
        info = get_model_info(name)
        model = create_model(info.name, **overrides)
        if checkpoint is not None:
            state = read_state_dict(checkpoint, allow_pickle=allow_pickle)
            load_state_dict_into(model, state, checkpoint, info.architecture, strict)
        return model.eval()
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
    architecture, preset = config["architecture"], config.get("preset", "paper")
    registered = architecture if preset == "paper" else f"{architecture}-{preset}"
    network = create_model(registered, **{**config["overrides"], **overrides})
    model = wrap_model(network, config["wrappers"])
    state = upgrade_state_dict(read_state_dict(path), saved)
    load_state_dict_into(model, state, path, architecture, strict)
    model.aioir_metadata = dict(config.get("metadata", {}))
    # the artefacts saved beside the weights (a method's, e.g. UDAIR's source bank)
    attach_artifacts(model, path if path.is_dir() else path.parent, model.aioir_metadata)
    return model.eval()
