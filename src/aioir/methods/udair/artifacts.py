"""What a saved UDAIR model keeps beside its weights (registered with
:func:`aioir.models.register_artifact` when the package loads):

* ``source_bank`` — the per-task source bank (:class:`~aioir.methods.udair.bank.SourceBank`,
  ``bank.safetensors``), attached as ``model.source_bank``; stored in the dtype it was read
  with (``aioir bank --dtype``). Also attached from a file: ``aioir.load_model("udair",
  checkpoint=CKPT, bank=FILE)`` / ``--bank FILE`` (aioir's bank or the authors'
  ``source_domain_distrib.pth``; its channels must be the model's);
* ``adapters_enabled`` — ``true`` for a model whose distribution adapters were learnt for a
  target domain (``aioir adapt``): it loads with the adapters switched on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from aioir.methods.udair.bank import BANK_FILE, SourceBank
from aioir.models.artifacts import ModelArtifact, register_artifact

__all__ = ["ADAPTERS", "SOURCE_BANK"]


def _save_bank(model: nn.Module, folder: Path) -> str | None:
    bank = getattr(model, "source_bank", None)
    if bank is None:
        return None
    bank.save(folder / BANK_FILE)
    return BANK_FILE


def _load_bank(model: nn.Module, folder: Path, value: Any) -> None:
    model.source_bank = SourceBank.load(folder / str(value))


def _bank_from_file(model: nn.Module, path: Path) -> None:
    from aioir.errors import ConfigError
    from aioir.methods.udair.model import UDAIRBase

    if not isinstance(model, UDAIRBase):
        raise ConfigError(
            f"{path}: a source bank applies to UDAIR models, not a {type(model).__name__}"
        )
    bank = SourceBank.load(path)
    channels = {k: a.adapt[0].in_channels for k, a in model.adapters().items()}
    bank.check_channels(channels, str(path))
    model.source_bank = bank


def _save_adapters(model: nn.Module, folder: Path) -> bool | None:
    return True if getattr(model, "adapters_enabled", False) else None


def _load_adapters(model: nn.Module, folder: Path, value: Any) -> None:
    set_adapters = getattr(model, "set_adapters", None)
    if set_adapters is not None:
        set_adapters(bool(value))


SOURCE_BANK = register_artifact(
    ModelArtifact("source_bank", _save_bank, _load_bank, argument="bank", load_file=_bank_from_file)
)
ADAPTERS = register_artifact(ModelArtifact("adapters_enabled", _save_adapters, _load_adapters))
