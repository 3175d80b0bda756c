"""VGG-16 feature stack in torchvision's key layout, for perceptual and contrastive losses.

torchvision is not a dependency (it replaces the CPU torch build), and no model hub is
reachable, so the network is built here with torchvision's module indices — a ``vgg16`` state
dict (``features.0.weight`` … ``features.28.bias``, ``classifier.*``) loads without renaming —
and its weights come from a file the user supplies (:func:`load_vgg16_features`). Only the
convolutional ``features`` are built; ``classifier.*`` entries of a full file are ignored.

Taps are named as in the literature: ``relu1_2`` (index 3), ``relu2_2`` (8), ``relu3_3`` (15),
``relu4_3`` (22), ``relu5_3`` (29). The stack stops at the deepest tap asked for, so
``VGG16Features(last="relu3_3")`` is torchvision's ``features[:16]``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

from aioir.errors import CheckpointError
from aioir.nn.frozen import load_frozen_weights

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "VGG16_LAYERS",
    "VGG16Features",
    "load_vgg16_features",
    "vgg16_state_dict_shapes",
]

#: torchvision's ``vgg16`` configuration: channels per conv, ``"M"`` = 2×2 max-pool.
_CONFIG: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M",
)  # fmt: skip

#: Named taps → index of the ReLU in ``features`` whose output they are.
VGG16_LAYERS: dict[str, int] = {
    "relu1_1": 1,
    "relu1_2": 3,
    "relu2_1": 6,
    "relu2_2": 8,
    "relu3_1": 11,
    "relu3_2": 13,
    "relu3_3": 15,
    "relu4_1": 18,
    "relu4_2": 20,
    "relu4_3": 22,
    "relu5_1": 25,
    "relu5_2": 27,
    "relu5_3": 29,
}

#: ImageNet statistics the published weights were trained with (RGB, 0–1 input).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _layers(last_index: int) -> list[nn.Module]:
    layers: list[nn.Module] = []
    channels = 3
    for item in _CONFIG:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            assert isinstance(item, int)
            layers += [nn.Conv2d(channels, item, kernel_size=3, padding=1), nn.ReLU(inplace=False)]
            channels = item
        if len(layers) > last_index:
            break
    return layers[: last_index + 1]


class VGG16Features(nn.Module):
    """VGG-16 ``features`` up to the tap ``last``, returning the requested taps.

    Args:
        last: deepest tap built (a key of :data:`VGG16_LAYERS`).
        normalize_input: map a 0–1 RGB input to ImageNet statistics first (as the published
            weights expect); ``False`` if the caller already did.

    ``forward(x, taps)`` returns ``{tap: feature}`` for each requested tap (default: ``last``).
    The module is frozen (``requires_grad_(False)``, eval mode); gradients still flow to ``x``.
    """

    def __init__(self, last: str = "relu5_3", normalize_input: bool = True) -> None:
        super().__init__()
        if last not in VGG16_LAYERS:
            raise ValueError(f"unknown VGG-16 tap {last!r}; choose from {sorted(VGG16_LAYERS)}")
        self.last = last
        self.features = nn.Sequential(*_layers(VGG16_LAYERS[last]))
        self.normalize_input = normalize_input
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGG16Features:
        """Stay in eval mode (a frozen feature extractor)."""
        return super().train(False)

    def forward(self, x: Tensor, taps: Iterable[str] | None = None) -> dict[str, Tensor]:
        wanted = list(taps) if taps is not None else [self.last]
        unknown = [t for t in wanted if t not in VGG16_LAYERS]
        if unknown:
            raise ValueError(f"unknown VGG-16 tap(s) {unknown}; choose from {sorted(VGG16_LAYERS)}")
        deepest = max(VGG16_LAYERS[t] for t in wanted)
        if deepest > VGG16_LAYERS[self.last]:
            raise ValueError(f"tap beyond {self.last!r} asked for; build with a deeper `last`")
        by_index = {VGG16_LAYERS[t]: t for t in wanted}
        h = (x - self.mean) / self.std if self.normalize_input else x
        out: dict[str, Tensor] = {}
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in by_index:
                out[by_index[i]] = h
            if i == deepest:
                break
        return out


def vgg16_state_dict_shapes() -> dict[str, tuple[int, ...]]:
    """Key → shape of torchvision's full ``vgg16`` state dict (features and classifier)."""
    shapes = {k: tuple(v.shape) for k, v in VGG16Features("relu5_3").state_dict().items()}
    shapes.update(
        {
            "classifier.0.weight": (4096, 25088),
            "classifier.0.bias": (4096,),
            "classifier.3.weight": (4096, 4096),
            "classifier.3.bias": (4096,),
            "classifier.6.weight": (1000, 4096),
            "classifier.6.bias": (1000,),
        }
    )
    return shapes


def _features_only(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    out = {}
    for key, value in state.items():
        # accept "features.*" as torchvision writes it, or a "vgg." / "module." prefixed copy
        name = key.split("features.", 1)
        if len(name) == 2 and not key.startswith("classifier"):
            out["features." + name[1]] = value
    return out


def load_vgg16_features(
    path: str | Path, last: str = "relu5_3", normalize_input: bool = True
) -> VGG16Features:
    """Build :class:`VGG16Features` and load ImageNet weights from a local file.

    ``path`` holds torchvision's ``vgg16`` state dict (``.pth`` via ``torch.save`` or
    ``.safetensors``; a ``features``-only dict is fine). Raises :class:`CheckpointError` with a
    one-line message when the file is missing, unreadable or of another layout.
    """
    from aioir.models.checkpoints import read_state_dict

    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{p}: VGG-16 weights file not found")
    state = _features_only(read_state_dict(p))
    model = VGG16Features(last=last, normalize_input=normalize_input)
    load_frozen_weights(model, state, p, "a VGG-16 state dict in torchvision's layout")
    return model
