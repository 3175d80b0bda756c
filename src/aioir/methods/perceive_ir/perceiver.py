"""The three-tier quality perceiver trained from scratch (``perceive-ir-lite``'s stand-in for
the CLIP quality prompts).

:class:`QualityPerceiver` maps an image crop (0–1 RGB, any size) to logits over the tiers
``low`` (a degraded input), ``medium`` (an imperfect restoration) and ``high`` (the clean
image), in that order — the order of the authors' prompts "terrible", "mediocre", "excellent".
A small convolutional stack (4 × [3×3 stride 2 + GELU]) pooled by the mean *and* the standard
deviation of each channel (noise and contrast show in the second), then a two-layer MLP.

Files: :func:`save_perceiver` writes one safetensors file (its configuration in the header);
:func:`load_perceiver` reads it, or the ``quality_perceiver.safetensors`` inside a saved-model
folder (where the stage-1 run's export keeps it).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from aioir.errors import CheckpointError

__all__ = [
    "PERCEIVER_FILE",
    "TIERS",
    "QualityPerceiver",
    "load_perceiver",
    "save_perceiver",
]

TIERS = ("low", "medium", "high")
PERCEIVER_FILE = "quality_perceiver.safetensors"


class QualityPerceiver(nn.Module):
    """Image crop → logits over :data:`TIERS` (see the module docstring)."""

    def __init__(self, widths: Sequence[int] = (32, 64, 96, 128), hidden: int = 128) -> None:
        super().__init__()
        self.config = {"widths": [int(w) for w in widths], "hidden": int(hidden)}
        layers: list[nn.Module] = []
        channels = 3
        for width in widths:
            layers += [nn.Conv2d(channels, width, 3, stride=2, padding=1), nn.GELU()]
            channels = width
        self.body = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Linear(2 * channels, hidden), nn.GELU(), nn.Linear(hidden, len(TIERS))
        )

    def forward(self, x: Tensor) -> Tensor:
        h = self.body(x * 2 - 1)
        pooled = torch.cat([h.mean(dim=(-2, -1)), h.std(dim=(-2, -1))], dim=1)
        return self.head(pooled)


def save_perceiver(perceiver: QualityPerceiver, path: str | Path) -> Path:
    """Write ``perceiver`` to ``path`` (one safetensors file with its configuration)."""
    from safetensors.torch import save

    from aioir.io import write_bytes_atomically

    tensors = {k: v.detach().contiguous().cpu() for k, v in perceiver.state_dict().items()}
    meta = {"aioir_quality_perceiver": json.dumps(perceiver.config), "tiers": ",".join(TIERS)}
    write_bytes_atomically(Path(path), save(tensors, metadata=meta), overwrite=True)
    return Path(path)


def load_perceiver(path: str | Path) -> QualityPerceiver:
    """Read a perceiver file (or the one in a saved-model folder); frozen, in eval mode.

    :class:`CheckpointError` (one line) when it is missing or not a perceiver file.
    """
    from safetensors import safe_open
    from safetensors.torch import load_file

    p = Path(path)
    if p.is_dir():
        p = p / PERCEIVER_FILE
    if not p.is_file():
        raise CheckpointError(f"{p}: quality perceiver file not found")
    try:
        with safe_open(str(p), framework="pt") as f:
            meta = f.metadata() or {}
        config = json.loads(meta["aioir_quality_perceiver"])
        model = QualityPerceiver(**config)
        model.load_state_dict(load_file(str(p)))
    except (KeyError, ValueError, RuntimeError, TypeError, OSError) as exc:
        detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{p}: not a quality perceiver file ({detail})") from exc
    return model.requires_grad_(False).eval()
