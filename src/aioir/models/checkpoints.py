"""Checkpoint formats: our own (safetensors + JSON config) and the reference code bases'.

**Our format** (:func:`save_pretrained`):

* a directory with ``model.safetensors`` and ``config.json``, or
* a single ``*.safetensors`` file whose header metadata holds the same JSON (key
  ``aioir_config``).

The config is ``{"format": "aioir", "format_version": 2, "architecture", "preset",
"overrides", "metadata"}`` where ``metadata`` is free-form JSON (training data, metrics, …),
plus ``"wrappers"`` for a network inside wrappers (:mod:`aioir.models.wrappers`, e.g. the filter
bank; its weights are then ``restorer.*`` and the wrappers' own). Format 1 (before wrappers)
had no ``wrappers`` and described the filter bank as constructor arguments
(``overrides: {filter_bank: K, filter_taps: T}``) with top-level ``filter_bank.*`` keys;
:func:`upgrade_config` and :func:`upgrade_state_dict` translate it on load.

**Foreign formats** read by :func:`read_state_dict` (always ``map_location="cpu"``, and
``weights_only=True`` unless ``allow_pickle=True`` is passed for a trusted file):

* raw state dicts (``.pth``/``.pt``), e.g. from the UDAIR code's ``net``;
* PyTorch-Lightning checkpoints (``state_dict`` with the LightningModule's prefix: ``net.``
  for both PromptIR's ``PromptIRModel`` and UDAIR's ``Supervision_Train``); other entries of the
  LightningModule (losses, …) are ignored. Our own training checkpoints also hold the weight EMA
  (:data:`EMA_KEY`: the trainable parameters only); it replaces those parameters unless
  ``ema=False``, so a ``best.ckpt`` / ``last.ckpt`` reads as the weights its run validates and
  would export;
* BasicSR checkpoints (``params`` / ``params_ema``; the EMA when both are present, unless
  ``ema=False``; e.g. official Restormer weights);
* a ``module.`` (DataParallel/DDP) prefix is stripped.

Our modules use the reference attribute names where they can; an architecture whose reference
names differ inside shared blocks (a method package) registers an explicit ``old → new`` renaming in
:data:`KEY_MAPS`.
"""

from __future__ import annotations

import importlib.resources
import json
import pickle
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from aioir.errors import CheckpointError, ConfigError

__all__ = [
    "CONFIG_NAME",
    "EMA_KEY",
    "KEY_MAPS",
    "STORAGE_DTYPE",
    "STORAGE_DTYPES",
    "WEIGHTS_NAME",
    "is_pretrained_path",
    "load_state_dict_into",
    "read_pretrained_config",
    "read_state_dict",
    "save_pretrained",
    "shipped_weights",
    "state_dict_of",
    "upgrade_config",
    "upgrade_state_dict",
]

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
#: 2: ``wrappers`` (the filter bank is a wrapper, no longer constructor arguments)
FORMAT_VERSION = 2
#: a module attribute naming the dtype (a key of :data:`STORAGE_DTYPES`) in which
#: :func:`save_pretrained` stores that module's floating-point tensors; loading casts them back
#: to the module's own dtype (``load_state_dict`` copies), so only the file shrinks
STORAGE_DTYPE = "aioir_storage_dtype"
STORAGE_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16}

#: Explicit key renames per architecture, applied before loading: a dict ``old key → new key``
#: or a function ``old key → new key`` (identity on our own keys) that a method package
#: registers for an architecture whose reference names differ inside shared blocks.
KEY_MAPS: dict[str, dict[str, str] | Callable[[str], str]] = {
    "restormer": {},
    "promptir": {},
    "udair": {},
}

_PREFIXES = ("net.", "module.", "model.")

#: where our training checkpoints keep the EMA of the trainable parameters (same keys as
#: ``state_dict``; buffers and frozen parameters only in ``state_dict``)
EMA_KEY = "ema_state_dict"


# ------------------------------------------------------------------------------ our format
def _stored_tensors(model: nn.Module) -> dict[str, Tensor]:
    """``model``'s state dict as it is written: on the CPU, contiguous, and the floating-point
    tensors of each submodule that names a :data:`STORAGE_DTYPE` in that dtype."""
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    for prefix, module in model.named_modules():
        name = getattr(module, STORAGE_DTYPE, None)
        if name is None:
            continue
        if name not in STORAGE_DTYPES:
            raise ConfigError(
                f"{prefix or 'model'}: storage dtype {name!r} is not one of "
                f"{', '.join(STORAGE_DTYPES)}"
            )
        head = f"{prefix}." if prefix else ""
        for key, value in tensors.items():
            if key.startswith(head) and value.is_floating_point():
                tensors[key] = value.to(STORAGE_DTYPES[name])
    return tensors


def save_pretrained(
    model: nn.Module, path: str | Path, metadata: Mapping[str, Any] | None = None
) -> Path:
    """Save ``model`` (built by :func:`aioir.load_model` / ``create_model``, or wrappers
    around such a network) in our format.

    ``path`` ending in ``.safetensors`` writes one self-describing file; any other path is a
    directory receiving ``model.safetensors`` + ``config.json``. Returns the weights file.
    """
    from safetensors.torch import save as save_safetensors

    from aioir.io import write_bytes_atomically

    base = getattr(model, "aioir_config", None)
    if base is None:
        raise ConfigError(
            "model has no aioir_config; build it with aioir.load_model(name) or create_model(name)"
        )
    config = {
        "format": "aioir",
        "format_version": FORMAT_VERSION,
        "architecture": base["architecture"],
        "preset": base["preset"],
        "overrides": dict(base.get("overrides", {})),
        "metadata": dict(metadata or {}),
    }
    if base.get("wrappers"):
        config["wrappers"] = [dict(spec) for spec in base["wrappers"]]
    try:
        text = json.dumps(config, indent=2, sort_keys=True)
    except TypeError as exc:
        raise ConfigError(f"config/metadata must be JSON-serialisable: {exc}") from exc
    tensors = _stored_tensors(model)
    path = Path(path)
    weights = path if path.suffix == ".safetensors" else path / WEIGHTS_NAME
    # atomic, and with the usual permissions (safetensors' own writer creates 0600 files)
    payload = save_safetensors(tensors, metadata={"aioir_config": text})
    if weights is not path:
        write_bytes_atomically(path / CONFIG_NAME, (text + "\n").encode(), overwrite=True)
    write_bytes_atomically(weights, payload, overwrite=True)
    return weights


def _weights_file(path: Path) -> Path:
    return path / WEIGHTS_NAME if path.is_dir() else path


def shipped_weights(name: str) -> Path | None:
    """The shipped model ``name`` inside the installed package, if any.

    Either a saved-model folder ``aioir/weights/<name>/`` (weights, config, the UDAIR source
    bank and a model card) or one self-describing file ``aioir/weights/<name>.safetensors``.
    ``"default"`` is the shipped default model.
    """
    try:
        root = importlib.resources.files("aioir") / "weights"
    except (ModuleNotFoundError, TypeError):  # pragma: no cover - broken installs only
        return None
    folder = root / name
    if folder.is_dir() and (folder / WEIGHTS_NAME).is_file():
        return Path(str(folder))
    single = root / f"{name}.safetensors"
    return Path(str(single)) if single.is_file() else None


def is_pretrained_path(path: str | Path) -> bool:
    """True if ``path`` is a directory or ``.safetensors`` file in our format."""
    p = Path(path)
    if p.is_dir():
        return (p / WEIGHTS_NAME).is_file()
    return p.is_file() and p.suffix == ".safetensors"


def read_pretrained_config(path: str | Path) -> dict[str, Any]:
    """The JSON config of a saved model (``config.json`` or the safetensors header)."""
    from safetensors import safe_open

    p = Path(path)
    if p.is_dir() and (p / CONFIG_NAME).is_file():
        try:
            config = json.loads((p / CONFIG_NAME).read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"{p / CONFIG_NAME}: invalid JSON ({exc})") from exc
    else:
        weights = _weights_file(p)
        try:
            with safe_open(str(weights), framework="pt") as f:
                meta = f.metadata() or {}
        except Exception as exc:
            raise CheckpointError(f"{weights}: not a readable safetensors file ({exc})") from exc
        if "aioir_config" not in meta:
            raise CheckpointError(
                f"{weights}: no aioir config (neither config.json nor header metadata); "
                "load it as a checkpoint of a named model: load_model(name, checkpoint=path)"
            )
        config = json.loads(meta["aioir_config"])
    if config.get("format") != "aioir" or "architecture" not in config:
        raise CheckpointError(f"{p}: not an aioir model config")
    version = config.get("format_version", 1)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{p}: saved-model format {version!r} is newer than this aioir reads "
            f"({FORMAT_VERSION}); upgrade aioir"
        )
    return config


def upgrade_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` (:func:`read_pretrained_config`) in the current format: a format-1 filter
    bank (``overrides.filter_bank``/``filter_taps``) becomes a ``wrappers`` entry."""
    from aioir.models.filter_bank import legacy_wrapper_spec

    out = {**config, "overrides": dict(config.get("overrides", {}))}
    out["wrappers"] = [dict(spec) for spec in config.get("wrappers", [])]
    if config.get("format_version", 1) < 2:
        spec = legacy_wrapper_spec(out["overrides"])
        if spec is not None:
            out["wrappers"].append(spec)
    out["format_version"] = FORMAT_VERSION
    return out


def upgrade_state_dict(
    state: Mapping[str, Tensor], config: Mapping[str, Any]
) -> Mapping[str, Tensor]:
    """The weights of a model saved with ``config`` (as read) laid out as today's modules: a
    format-1 model with a filter bank had the network's keys at the top level."""
    from aioir.models.filter_bank import nest_legacy_state

    if config.get("format_version", 1) < 2 and upgrade_config(config)["wrappers"]:
        return nest_legacy_state(state)
    return state


# ------------------------------------------------------------------------------ reading
def _numpy_safe_globals() -> list[Any]:
    import numpy as np

    core = getattr(np, "_core", None) or np.core
    allowed: list[Any] = [
        core.multiarray.scalar,
        core.multiarray._reconstruct,
        np.ndarray,
        np.dtype,
    ]
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        allowed += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith("DType")]
    return allowed


def _torch_load(path: Path, allow_pickle: bool) -> Any:
    try:
        if allow_pickle:
            return torch.load(path, map_location="cpu", weights_only=False)
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[-1][:300]
        raise CheckpointError(
            f"{path}: holds Python objects a weights-only load refuses ({first}); "
            "if you trust the file, pass allow_pickle=True"
        ) from exc
    except Exception as exc:
        raise CheckpointError(f"{path}: cannot be read as a PyTorch checkpoint ({exc})") from exc


def _unwrap(obj: Any, path: Path, ema: bool = True) -> dict[str, Tensor]:
    if isinstance(obj, Mapping):
        order = ("params_ema", "params") if ema else ("params", "params_ema")
        for key in ("state_dict", *order, "model_state_dict", "model"):
            inner = obj.get(key)
            if _is_state_dict(inner):
                state = _unwrap(inner, path, ema)
                averaged = obj.get(EMA_KEY)
                if key == "state_dict" and ema and _is_state_dict(averaged):
                    state = {**state, **averaged}  # EMA parameters over the raw ones
                return state
        tensors = {k: v for k, v in obj.items() if isinstance(v, Tensor)}
        if tensors:
            return tensors
    raise CheckpointError(f"{path}: no state dict found (expected a mapping of tensors)")


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and bool(obj) and all(isinstance(k, str) for k in obj)


def _strip_prefixes(state: dict[str, Tensor]) -> dict[str, Tensor]:
    for prefix in _PREFIXES:
        if any(k.startswith(prefix) for k in state):
            # LightningModule: keep the network's entries only (losses etc. are not the model)
            state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    return state


def read_state_dict(
    path: str | Path, allow_pickle: bool = False, *, ema: bool = True
) -> dict[str, Tensor]:
    """Read the model state dict from any supported file (see module docstring), on the CPU.

    ``ema``: a checkpoint holding both raw and EMA weights (ours, BasicSR's) gives the EMA
    ones; ``False`` gives the raw ones.
    """
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"{p}: no such file or directory")
    weights = _weights_file(p)
    if weights.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(weights), device="cpu")
        except Exception as exc:
            raise CheckpointError(f"{weights}: not a readable safetensors file ({exc})") from exc
    return state_dict_of(_torch_load(weights, allow_pickle), weights, ema=ema)


def state_dict_of(obj: Any, source: str | Path, *, ema: bool = True) -> dict[str, Tensor]:
    """The model state dict inside an already loaded checkpoint object (as
    :func:`read_state_dict` reads a file; ``source`` names it in errors)."""
    return _strip_prefixes(_unwrap(obj, Path(source), ema))


# ------------------------------------------------------------------------------ loading
def _listing(keys: list[str], n: int = 5) -> str:
    shown = ", ".join(keys[:n])
    return f"{shown}, … ({len(keys)} in all)" if len(keys) > n else shown


def load_state_dict_into(
    model: nn.Module,
    state: Mapping[str, Tensor],
    source: str | Path,
    architecture: str | None = None,
    strict: bool = True,
) -> None:
    """Load ``state`` into ``model``; raise :class:`CheckpointError` naming ``source`` and
    listing a few missing / unexpected / wrongly shaped keys on a mismatch.

    With ``strict=False`` missing and unexpected keys are tolerated; shape mismatches never are.
    """
    mapping = KEY_MAPS.get(architecture or "", {})
    rename = mapping if callable(mapping) else (lambda k: mapping.get(k, k))
    state = {rename(k): v for k, v in state.items()}
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(
        f"{k} {tuple(state[k].shape)}≠{tuple(own[k].shape)}"
        for k in set(own) & set(state)
        if state[k].shape != own[k].shape
    )
    problems = []
    if shapes:
        problems.append(f"shape mismatch: {_listing(shapes)}")
    if strict and missing:
        problems.append(f"missing keys: {_listing(missing)}")
    if strict and unexpected:
        problems.append(f"unexpected keys: {_listing(unexpected)}")
    if problems:
        raise CheckpointError(
            f"{source}: does not fit {type(model).__name__} — " + "; ".join(problems)
        )
    model.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)
