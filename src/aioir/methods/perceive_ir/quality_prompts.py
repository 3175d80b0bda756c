"""Perceive-IR's stage 1 with CLIP: CoOp-style quality prompts (the paper's perceiver).

:class:`QualityPromptLearner` holds, for each tier low / medium / high (the class words
"terrible", "mediocre", "excellent"), ``context_length`` (16) learnable context vectors of
CLIP's text width, initialised N(0, 0.02) with the last one set to the class word's token
embedding (when CLIP's vocabulary file is given; else it stays random). A prompt is
``[SOT, ctx_1 … ctx_16, EOT, pad …]``; its text feature is the end-of-text token's, projected
and L2-normalised (the frozen CLIP text tower, :class:`aioir.nn.clip.CLIP`).

:class:`QualityPromptScorer` gives the cosine similarities of an image's CLIP feature to the
three prompt features (``B×3``): stage 1 trains the context with ``CE(logit_scale · cos,
tier)``; stage 2's ``clip_quality`` loss reads them frozen (no logit scale by default, as the
authors' code). Files: :func:`save_quality_prompts` / :func:`load_quality_prompts` (the
context and its words; ``quality_prompts.safetensors`` in a stage-1 export).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aioir.errors import CheckpointError
from aioir.nn.clip import CLIP
from aioir.nn.clip_tokens import placeholder_tokens, word_token_id

__all__ = [
    "PROMPTS_FILE",
    "QUALITY_WORDS",
    "FrozenQualityScorer",
    "QualityPromptLearner",
    "QualityPromptScorer",
    "load_quality_prompts",
    "load_quality_scorer",
    "read_quality_prompts",
    "save_quality_prompts",
]

QUALITY_WORDS = ("terrible", "mediocre", "excellent")
PROMPTS_FILE = "quality_prompts.safetensors"


class QualityPromptLearner(nn.Module):
    """Learnable context vectors of the three quality prompts (see the module docstring)."""

    def __init__(
        self,
        clip: CLIP,
        context_length: int = 16,
        vocabulary: str | Path | None = None,
        words: tuple[str, ...] = QUALITY_WORDS,
    ) -> None:
        super().__init__()
        width = clip.config.text_width
        context = torch.empty(len(words), context_length, width)
        nn.init.normal_(context, std=0.02)
        if vocabulary is not None:
            ids = torch.tensor([word_token_id(vocabulary, w) for w in words])
            with torch.no_grad():
                context[:, -1] = clip.token_embedding(ids).to(context)
        self.context = nn.Parameter(context)
        self.words = tuple(words)
        tokens = placeholder_tokens(context_length, len(words), clip.config.context_length)
        with torch.no_grad():
            embedded = clip.token_embedding(tokens)
        self.register_buffer("token_prefix", embedded[:, :1].clone(), persistent=False)
        self.register_buffer(
            "token_suffix", embedded[:, 1 + context_length :].clone(), persistent=False
        )
        self.register_buffer("eot", tokens.argmax(dim=-1), persistent=False)

    def forward(self) -> Tensor:
        """The prompts' token embeddings (``3×context×width``)."""
        return torch.cat([self.token_prefix, self.context, self.token_suffix], dim=1)


class QualityPromptScorer(nn.Module):
    """Cosine similarities of images to the three quality prompts (``B×3``)."""

    def __init__(self, clip: CLIP, learner: QualityPromptLearner) -> None:
        super().__init__()
        self.clip = clip
        self.learner = learner

    def text_features(self) -> Tensor:
        """The prompts' L2-normalised text features (``3×embed``)."""
        features = self.clip.encode_text_embeddings(self.learner(), self.learner.eot)
        return F.normalize(features, dim=-1)

    def forward(self, image: Tensor) -> Tensor:
        with torch.no_grad():
            feats = F.normalize(self.clip.encode_image(image), dim=-1)
        return feats @ self.text_features().t()


class FrozenQualityScorer(nn.Module):
    """Stage 2: the text features computed once; ``scale × cos`` of images to them."""

    def __init__(self, clip: CLIP, text_features: Tensor, scale: float = 1.0) -> None:
        super().__init__()
        self.clip = clip
        self.scale = float(scale)
        self.register_buffer("text_features", text_features.detach().clone())

    def forward(self, image: Tensor) -> Tensor:
        feats = F.normalize(self.clip.encode_image(image), dim=-1)
        return self.scale * feats @ self.text_features.t()


def save_quality_prompts(context: Tensor, words: tuple[str, ...], path: str | Path) -> Path:
    """Write learnt prompt context (``3×n×width``) and its class words to ``path``."""
    from safetensors.torch import save

    from aioir.io import write_bytes_atomically

    meta = {"aioir_quality_prompts": json.dumps({"words": list(words)})}
    payload = save({"context": context.detach().contiguous().cpu()}, metadata=meta)
    write_bytes_atomically(Path(path), payload, overwrite=True)
    return Path(path)


def read_quality_prompts(path: str | Path) -> tuple[Tensor, tuple[str, ...]]:
    """The context and class words saved at ``path`` (or in a stage-1 export folder)."""
    from safetensors import safe_open

    p = Path(path)
    if p.is_dir():
        p = p / PROMPTS_FILE
    if not p.is_file():
        raise CheckpointError(f"{p}: quality prompts file not found")
    try:
        with safe_open(str(p), framework="pt") as f:
            words = tuple(json.loads((f.metadata() or {})["aioir_quality_prompts"])["words"])
            context = f.get_tensor("context")
    except (KeyError, ValueError, OSError) as exc:
        raise CheckpointError(f"{p}: not a quality prompts file ({exc})") from exc
    if context.ndim != 3 or context.shape[0] != len(words):
        raise CheckpointError(f"{p}: context of shape {tuple(context.shape)} fits no prompts")
    return context, words


def load_quality_prompts(path: str | Path, clip: CLIP) -> QualityPromptLearner:
    """The prompt learner saved at ``path`` (or in a stage-1 export folder), frozen."""
    context, words = read_quality_prompts(path)
    if context.shape[2] != clip.config.text_width:
        raise CheckpointError(f"{path}: context width {context.shape[2]} is not CLIP's text width")
    learner = QualityPromptLearner(clip, context.shape[1], None, words)
    with torch.no_grad():
        learner.context.copy_(context)
    return learner.requires_grad_(False).eval()


def load_quality_scorer(
    clip_path: str | Path, prompts: str | Path, logit_scale: float | None = None
) -> FrozenQualityScorer:
    """CLIP from ``clip_path`` and the stage-1 prompts → the frozen stage-2 scorer.

    ``logit_scale``: multiply the similarities by it (``None``: 1, the authors' code).
    """
    from aioir.nn.clip import load_clip

    clip = load_clip(clip_path)
    learner = load_quality_prompts(prompts, clip)
    with torch.no_grad():
        text = QualityPromptScorer(clip, learner).text_features()
    return FrozenQualityScorer(clip, text, 1.0 if logit_scale is None else logit_scale)
