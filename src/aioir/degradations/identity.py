"""The identity "degradation": clean inputs, for the ``clean`` task.

A blind all-in-one model sees clean photos too; training on some (the input equals the target)
teaches it to leave them alone, and ``synthetic:DIR:clean`` measures whether it does.
"""

from __future__ import annotations

import dataclasses

import torch

from aioir.degradations.base import Degradation, register_degradation

__all__ = ["Identity"]


@register_degradation("identity", task="clean")
@dataclasses.dataclass(frozen=True)
class Identity(Degradation):
    """No degradation at all (no parameters; every severity gives the clean image)."""

    @classmethod
    def sample(cls, severity: float, generator: torch.Generator) -> Identity:
        return cls()

    def apply(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return images.clone()
