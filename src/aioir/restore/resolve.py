"""Turn what the user typed after ``--model`` (and ``--checkpoint``) into a loaded model.

Resolution order for ``spec``:

1. an ``nn.Module`` is used as it is (Python API), unless it still has the random weights
   ``aioir.load_model(NAME)`` gave it without a checkpoint
   (:func:`aioir.models.registry.untrained_name`): refused like a bare name, see 4;
2. ``"default"`` is the shipped default model, the folder ``aioir/weights/default/`` (a
   :func:`~aioir.models.save_pretrained` folder with its UDAIR source bank and model card);
3. an existing path is a saved model (directory or ``.safetensors``);
4. a registered name (``udair``, ``restormer-tiny``, …) needs trained weights: ``checkpoint``,
   or shipped weights ``aioir/weights/<name>/`` (or ``<name>.safetensors``). Without them it
   is refused, unless ``allow_untrained=True`` (tests, smoke runs): restoring with random
   weights is never silent. A model with no parameters (``dark-channel-prior``) needs none;
5. anything else is an unknown name (with close matches) or a missing path.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from torch import nn

from aioir.errors import ConfigError

__all__ = ["DEFAULT_MODEL", "resolve_model", "shipped_weights"]

DEFAULT_MODEL = "default"
"""The name that means "the shipped default model"."""

_WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".ckpt", ".bin")


def shipped_weights(name: str) -> Path | None:
    """The shipped model ``name`` inside the installed package, if any.

    Either a saved-model folder ``aioir/weights/<name>/`` (weights, config, the UDAIR source
    bank and a model card) or one self-describing file ``aioir/weights/<name>.safetensors``
    (:func:`aioir.models.checkpoints.shipped_weights`).
    """
    from aioir.models.checkpoints import shipped_weights as find

    return find(name)


def _looks_like_path(spec: str) -> bool:
    return (
        os.sep in spec
        or (os.altsep is not None and os.altsep in spec)
        or spec.lower().endswith(_WEIGHT_SUFFIXES)
        or spec.startswith(".")
    )


def resolve_model(
    spec: str | os.PathLike[str] | nn.Module = DEFAULT_MODEL,
    checkpoint: str | os.PathLike[str] | None = None,
    *,
    allow_untrained: bool = False,
    artifacts: Mapping[str, str | os.PathLike[str] | None] | None = None,
) -> nn.Module:
    """Load the model that ``spec`` names (see the module docstring), in eval mode, on the CPU.

    ``artifacts``: files to attach (``{"bank": PATH}``, :func:`aioir.models.artifacts.
    attach_artifact_files`), e.g. UDAIR's source bank beside a ``checkpoint``. A model that
    runs with a frozen network kept outside its weights
    (:class:`~aioir.models.protocols.ExternalWeightsUser`) loads it here, so a missing file is
    one error before the first image.

    Raises:
        ConfigError: no default model shipped, an unknown name, a missing path, or a registered
            name without weights (and ``allow_untrained`` not given).
        CheckpointError: a weights file that cannot be read or does not fit.
    """
    from aioir.models.protocols import ExternalWeightsUser
    from aioir.models.wrappers import unwrap

    model = _resolve(spec, checkpoint, allow_untrained=allow_untrained, artifacts=artifacts)
    network = unwrap(model)
    if isinstance(network, ExternalWeightsUser):
        network.load_external_weights()
    return model


def _resolve(
    spec: str | os.PathLike[str] | nn.Module,
    checkpoint: str | os.PathLike[str] | None,
    *,
    allow_untrained: bool,
    artifacts: Mapping[str, str | os.PathLike[str] | None] | None,
) -> nn.Module:
    """:func:`resolve_model` without loading external weights."""
    files = {k: v for k, v in (artifacts or {}).items() if v is not None}
    if isinstance(spec, nn.Module):
        if files:
            from aioir.models.artifacts import attach_artifact_files

            attach_artifact_files(spec, files, type(spec).__name__)
        if checkpoint is not None:
            raise ConfigError("checkpoint= cannot be combined with a model object")
        if not allow_untrained:
            from aioir.models.registry import untrained_name
            from aioir.models.wrappers import unwrap

            name = untrained_name(spec) or untrained_name(unwrap(spec))
            if name is not None:
                raise ConfigError(
                    f"this model has random weights (aioir.load_model({name!r}) without a "
                    "checkpoint); pass checkpoint=PATH to load_model, load weights into it, or "
                    "pass allow_untrained=True to restore with it anyway (tests only)"
                )
        return spec.eval()
    from aioir.models import load_model
    from aioir.models.registry import get_model_info, is_registered

    text = str(spec).strip()
    if text == DEFAULT_MODEL:
        weights = shipped_weights(DEFAULT_MODEL)
        if weights is None:
            raise ConfigError("no default model is shipped yet; pass --model NAME_OR_PATH")
        if checkpoint is not None:
            raise ConfigError(
                "--checkpoint needs a model name (e.g. --model udair), not the default model"
            )
        return load_model(weights, **files).eval()
    path = Path(text).expanduser()
    if not is_registered(text) and path.exists():
        return load_model(path, checkpoint, **files).eval()
    if is_registered(text):
        if checkpoint is not None:
            return load_model(text, checkpoint, **files).eval()
        weights = shipped_weights(text.lower())
        if weights is not None:
            return load_model(weights, **files).eval()
        if get_model_info(text).parameters == 0:  # nothing to train: it is ready as built
            return load_model(text, **files).eval()
        if not allow_untrained:
            raise ConfigError(
                f"model {text!r} has no trained weights; pass --checkpoint PATH or a saved "
                "model path (or --allow-untrained to run it with random weights)"
            )
        return load_model(text, **files).eval()
    if _looks_like_path(text):
        raise ConfigError(f"{text}: no such model file or folder")
    return load_model(text)  # raises ConfigError: unknown model, with close matches
