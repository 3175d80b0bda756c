"""OpenAI CLIP (ViT image tower + text tower) in the ``openai/clip`` state-dict layout, frozen.

No model hub is reachable and the ``clip`` package is not a dependency, so the network is built
here with the public key names of ``clip.model.CLIP`` (``visual.conv1``,
``visual.class_embedding``, ``visual.positional_embedding``, ``visual.ln_pre``,
``visual.transformer.resblocks.<i>.{attn.in_proj_weight, attn.out_proj, ln_1, mlp.c_fc,
mlp.c_proj, ln_2}``, ``visual.ln_post``, ``visual.proj``; ``token_embedding``,
``positional_embedding``, ``transformer.resblocks.<i>.…``, ``ln_final``, ``text_projection``,
``logit_scale``) and its weights come from a file the user supplies (:func:`load_clip`): the
released TorchScript archive (``ViT-B-32.pt``, read with ``torch.jit.load``), a plain state dict
or a safetensors file of that layout. Weights are used in fp32.

The text tower takes token *embeddings* (:meth:`CLIP.encode_text_embeddings`), which is what
prompt learning needs; token ids come from :mod:`aioir.nn.clip_tokens`.
"""

from __future__ import annotations

import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aioir.errors import CheckpointError
from aioir.nn.frozen import load_frozen_weights

__all__ = [
    "CLIP",
    "CLIP_MEAN",
    "CLIP_STD",
    "VIT_B_32",
    "ClipConfig",
    "load_clip",
]

#: the image statistics CLIP was trained with (RGB, 0–1 input)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class ClipConfig:
    """Sizes of a ViT CLIP (defaults: ViT-B/32)."""

    embed_dim: int = 512
    image_resolution: int = 224
    vision_width: int = 768
    vision_layers: int = 12
    vision_patch_size: int = 32
    context_length: int = 77
    vocab_size: int = 49408
    text_width: int = 512
    text_heads: int = 8
    text_layers: int = 12

    @property
    def vision_heads(self) -> int:
        return self.vision_width // 64


VIT_B_32 = ClipConfig()


class _QuickGELU(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x * torch.sigmoid(1.702 * x)


class _ResidualAttentionBlock(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads)
        self.ln_1 = nn.LayerNorm(width)
        self.mlp = nn.Sequential()
        self.mlp.add_module("c_fc", nn.Linear(width, width * 4))
        self.mlp.add_module("gelu", _QuickGELU())
        self.mlp.add_module("c_proj", nn.Linear(width * 4, width))
        self.ln_2 = nn.LayerNorm(width)

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False, attn_mask=mask)[0]
        return x + self.mlp(self.ln_2(x))


class _Transformer(nn.Module):
    def __init__(self, width: int, layers: int, heads: int) -> None:
        super().__init__()
        self.resblocks = nn.ModuleList(_ResidualAttentionBlock(width, heads) for _ in range(layers))

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        for block in self.resblocks:  # sequence-first (L×B×D), as the reference
            x = block(x, mask)
        return x


class _VisionTransformer(nn.Module):
    def __init__(self, cfg: ClipConfig) -> None:
        super().__init__()
        w, p = cfg.vision_width, cfg.vision_patch_size
        grid = cfg.image_resolution // p
        self.conv1 = nn.Conv2d(3, w, kernel_size=p, stride=p, bias=False)
        self.class_embedding = nn.Parameter(torch.zeros(w))
        self.positional_embedding = nn.Parameter(torch.zeros(grid * grid + 1, w))
        self.ln_pre = nn.LayerNorm(w)
        self.transformer = _Transformer(w, cfg.vision_layers, cfg.vision_heads)
        self.ln_post = nn.LayerNorm(w)
        self.proj = nn.Parameter(torch.zeros(w, cfg.embed_dim))

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv1(x).flatten(2).transpose(1, 2)
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)
        x = self.transformer(self.ln_pre(x).permute(1, 0, 2)).permute(1, 0, 2)
        return self.ln_post(x[:, 0]) @ self.proj


class CLIP(nn.Module):
    """A frozen CLIP with a ViT image tower (see the module docstring)."""

    def __init__(self, config: ClipConfig = VIT_B_32) -> None:
        super().__init__()
        self.config = config
        self.visual = _VisionTransformer(config)
        self.token_embedding = nn.Embedding(config.vocab_size, config.text_width)
        self.positional_embedding = nn.Parameter(
            torch.zeros(config.context_length, config.text_width)
        )
        self.transformer = _Transformer(config.text_width, config.text_layers, config.text_heads)
        self.ln_final = nn.LayerNorm(config.text_width)
        self.text_projection = nn.Parameter(torch.zeros(config.text_width, config.embed_dim))
        self.logit_scale = nn.Parameter(torch.zeros(()))
        n = config.context_length
        mask = torch.full((n, n), float("-inf")).triu(1)
        self.register_buffer("causal_mask", mask, persistent=False)
        self.register_buffer("mean", torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(CLIP_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> CLIP:
        """Stay in eval mode (a frozen network)."""
        return super().train(False)

    def encode_image(self, image: Tensor) -> Tensor:
        """Image features (``B×embed_dim``, not normalised) of a 0–1 RGB batch: bicubic resize
        to the input resolution, CLIP normalisation, the ViT."""
        size = self.config.image_resolution
        x = F.interpolate(image, size=(size, size), mode="bicubic", align_corners=False)
        return self.visual((x - self.mean) / self.std)

    def encode_text_embeddings(self, embeddings: Tensor, eot_positions: Tensor) -> Tensor:
        """Text features (``B×embed_dim``) of token embeddings (``B×context×width``): causal
        transformer, final LayerNorm, the end-of-text token's feature projected."""
        x = embeddings + self.positional_embedding.to(embeddings.dtype)
        x = self.transformer(x.permute(1, 0, 2), self.causal_mask).permute(1, 0, 2)
        x = self.ln_final(x)
        return x[torch.arange(x.shape[0], device=x.device), eot_positions] @ self.text_projection

    def encode_text(self, tokens: Tensor) -> Tensor:
        """Text features of token ids (``B×context``; end of text = the largest id)."""
        return self.encode_text_embeddings(self.token_embedding(tokens), tokens.argmax(dim=-1))


#: entries of the released archives' state dicts that are not weights
_NOT_WEIGHTS = ("input_resolution", "context_length", "vocab_size")


def _read(path: Path) -> dict[str, Tensor]:
    from aioir.models.checkpoints import read_state_dict

    if not _is_torchscript(path):  # a state dict or a safetensors file
        return read_state_dict(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            archive = torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:
        raise CheckpointError(f"{path}: not a readable TorchScript archive ({exc})") from exc
    return {k: v for k, v in archive.state_dict().items() if isinstance(v, Tensor)}


def _is_torchscript(path: Path) -> bool:
    """A TorchScript archive (the released ``ViT-B-32.pt``): a zip with a ``code/`` folder."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any("/code/" in name for name in z.namelist())


def load_clip(path: str | Path, config: ClipConfig = VIT_B_32) -> CLIP:
    """Build :class:`CLIP` and load its weights (fp32) from a local file.

    :class:`CheckpointError` (one line) when the file is missing or of another layout.
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{p}: CLIP weights file not found")
    state = {k: v for k, v in _read(p).items() if k not in _NOT_WEIGHTS}
    model = CLIP(config)
    load_frozen_weights(model, state, p, "an OpenAI CLIP state dict of this size")
    return model
