"""Loading a frozen pretrained network (VGG-16, CLIP, DINOv2) from a user-supplied state dict."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from torch import Tensor, nn

from aioir.errors import CheckpointError

__all__ = ["load_frozen_weights"]


def load_frozen_weights(
    model: nn.Module, state: Mapping[str, Tensor], path: str | Path, layout: str
) -> None:
    """Copy ``state``'s entries for every key of ``model`` (as fp32 when the model's are).

    Extra keys in ``state`` are ignored (a classifier head, a pooler); a missing key or a shape
    that differs raises :class:`CheckpointError` in one line: ``PATH: not <layout> (…)``.
    """
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    bad = sorted(k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape))
    if missing or bad:
        detail = f"missing {missing[:3]}" if missing else f"wrong shape {bad[:3]}"
        raise CheckpointError(
            f"{path}: not {layout} ({detail}, {len(missing) + len(bad)} keys in all)"
        )
    model.load_state_dict({k: state[k].to(own[k].dtype) for k in own})
