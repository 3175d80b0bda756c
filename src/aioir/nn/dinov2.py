"""DINOv2 vision transformer in the Hugging Face ``Dinov2Model`` key layout (frozen features).

No model hub is reachable and ``transformers`` is not a dependency, so the encoder is built here
with the public key names of ``Dinov2Model`` (``embeddings.cls_token``,
``embeddings.position_embeddings``, ``embeddings.patch_embeddings.projection.*``,
``encoder.layer.<i>.{norm1, attention.attention.{query,key,value}, attention.output.dense,
layer_scale1.lambda1, norm2, mlp.fc1, mlp.fc2, layer_scale2.lambda1}``, ``layernorm.*``) and
its weights come from a file the user supplies (:func:`load_dinov2`): the ``model.safetensors``
of a ``Dinov2Model`` folder (or the folder), or a ``.pth``/``.bin`` state dict of that layout.

:meth:`Dinov2Encoder.class_tokens` resizes the 0–1 RGB input to 224×224 (bicubic), normalises it
with ImageNet statistics and returns the class token of the requested hidden states (index 0 =
the embeddings, ``i`` = after block ``i``, before the final LayerNorm — ``Dinov2Model``'s
``hidden_states``). Position embeddings are resized bicubically with antialiasing to the patch
grid, as current ``transformers`` releases do.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aioir.errors import CheckpointError
from aioir.nn.frozen import load_frozen_weights
from aioir.nn.vgg import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["DINOV2_BASE", "Dinov2Config", "Dinov2Encoder", "load_dinov2"]


@dataclass(frozen=True)
class Dinov2Config:
    """Sizes of a DINOv2 ViT (defaults: ``dinov2-base``, ViT-B/14 at 518²)."""

    hidden_size: int = 768
    layers: int = 12
    heads: int = 12
    mlp_ratio: int = 4
    patch_size: int = 14
    image_size: int = 518
    layer_norm_eps: float = 1e-6


DINOV2_BASE = Dinov2Config()


class _Embeddings(nn.Module):
    def __init__(self, cfg: Dinov2Config) -> None:
        super().__init__()
        grid = cfg.image_size // cfg.patch_size
        self.patch_size = cfg.patch_size
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.hidden_size))
        self.mask_token = nn.Parameter(torch.zeros(1, cfg.hidden_size))
        self.position_embeddings = nn.Parameter(torch.zeros(1, grid * grid + 1, cfg.hidden_size))
        self.patch_embeddings = nn.Module()
        self.patch_embeddings.projection = nn.Conv2d(
            3, cfg.hidden_size, cfg.patch_size, stride=cfg.patch_size
        )

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2] // self.patch_size, x.shape[-1] // self.patch_size
        tokens = self.patch_embeddings.projection(x).flatten(2).transpose(1, 2)
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        return torch.cat([cls, tokens], dim=1) + self._positions(h, w)

    def _positions(self, h: int, w: int) -> Tensor:
        pos = self.position_embeddings
        n = pos.shape[1] - 1
        if n == h * w and h == w:
            return pos
        side = math.isqrt(n)
        grid = pos[:, 1:].reshape(1, side, side, -1).permute(0, 3, 1, 2)
        grid = F.interpolate(
            grid.float(), size=(h, w), mode="bicubic", align_corners=False, antialias=True
        ).to(pos.dtype)
        return torch.cat([pos[:, :1], grid.flatten(2).transpose(1, 2)], dim=1)


class _SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        b, n, d = x.shape

        def split(t: Tensor) -> Tensor:
            return t.reshape(b, n, self.heads, d // self.heads).transpose(1, 2)

        out = F.scaled_dot_product_attention(
            split(self.query(x)), split(self.key(x)), split(self.value(x))
        )
        return out.transpose(1, 2).reshape(b, n, d)


class _Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.attention = _SelfAttention(dim, heads)
        self.output = nn.Module()
        self.output.dense = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.output.dense(self.attention(x))


class _LayerScale(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.lambda1 = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.lambda1


class _Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class _Layer(nn.Module):
    def __init__(self, cfg: Dinov2Config) -> None:
        super().__init__()
        d = cfg.hidden_size
        self.norm1 = nn.LayerNorm(d, eps=cfg.layer_norm_eps)
        self.attention = _Attention(d, cfg.heads)
        self.layer_scale1 = _LayerScale(d)
        self.norm2 = nn.LayerNorm(d, eps=cfg.layer_norm_eps)
        self.mlp = _Mlp(d, d * cfg.mlp_ratio)
        self.layer_scale2 = _LayerScale(d)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.layer_scale1(self.attention(self.norm1(x)))
        return x + self.layer_scale2(self.mlp(self.norm2(x)))


class Dinov2Encoder(nn.Module):
    """A frozen DINOv2 ViT (``Dinov2Model`` key layout); see the module docstring."""

    def __init__(self, config: Dinov2Config = DINOV2_BASE, input_size: int = 224) -> None:
        super().__init__()
        self.config = config
        self.input_size = input_size
        self.embeddings = _Embeddings(config)
        self.encoder = nn.Module()
        self.encoder.layer = nn.ModuleList(_Layer(config) for _ in range(config.layers))
        self.layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> Dinov2Encoder:
        """Stay in eval mode (a frozen feature extractor)."""
        return super().train(False)

    def hidden_states(self, pixel_values: Tensor, last: int | None = None) -> list[Tensor]:
        """Token sequences: ``[embeddings, after block 1, …, after block last]`` (normalised
        input of any size divisible by the patch size)."""
        last = self.config.layers if last is None else last
        x = self.embeddings(pixel_values)
        states = [x]
        for layer in self.encoder.layer[:last]:
            x = layer(x)
            states.append(x)
        return states

    @torch.no_grad()
    def class_tokens(self, image: Tensor, indices: Sequence[int] = (1, 4, 8, 12)) -> list[Tensor]:
        """Class tokens (``B×hidden``) of the hidden states ``indices`` of a 0–1 RGB image."""
        x = F.interpolate(
            image.float(), size=(self.input_size, self.input_size), mode="bicubic",
            align_corners=False,
        )  # fmt: skip
        states = self.hidden_states((x - self.mean) / self.std, last=max(indices))
        return [states[i][:, 0] for i in indices]


def _read(path: Path) -> dict[str, Tensor]:
    from aioir.models.checkpoints import read_state_dict

    if path.is_dir():
        for name in ("model.safetensors", "pytorch_model.bin"):
            if (path / name).is_file():
                return read_state_dict(path / name)
        raise CheckpointError(f"{path}: no model.safetensors or pytorch_model.bin in the folder")
    return read_state_dict(path)


def load_dinov2(path: str | Path, config: Dinov2Config = DINOV2_BASE) -> Dinov2Encoder:
    """Build :class:`Dinov2Encoder` and load its weights from a local file or folder.

    Keys may carry a ``dinov2.`` prefix (a ``Dinov2For…`` model); the pooler-free remainder
    must match. :class:`CheckpointError` (one line) when it is missing or of another layout.
    """
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"{p}: DINOv2 weights not found")
    state = _read(p)
    if any(k.startswith("dinov2.") for k in state):
        state = {k[len("dinov2.") :]: v for k, v in state.items() if k.startswith("dinov2.")}
    model = Dinov2Encoder(config)
    load_frozen_weights(model, state, p, "a DINOv2 state dict in the Dinov2Model layout")
    return model
