"""Capabilities a restorer may offer beyond ``forward``, as structural protocols.

Shared code asks for a capability, never for a method: ``aioir embed`` / ``aioir viz clusters``
work with any model that is a :class:`DegradationEmbedder` (UDAIR's codebook embedding today;
ABAIR's and Perceive-IR's degradation features can offer the same); ``aioir restore`` passes
a model's own options (``--adapter-mode`` …) to an :class:`InferenceConfigurable` and prints an
:class:`DecisionReporter`'s per-image decisions (``--explain``) and a :class:`TaskSuggester`'s
hint that ``--task`` would restore an image it held back on; :func:`aioir.restore.resolve_model`
has an :class:`ExternalWeightsUser` load the frozen networks it runs with before the first image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from torch import Tensor

__all__ = [
    "DecisionReporter",
    "DegradationEmbedder",
    "DegradationEmbedding",
    "ExternalWeightsUser",
    "InferenceConfigurable",
    "TaskSuggester",
    "TaskSuggestion",
]


@dataclass
class DegradationEmbedding:
    """What a model perceives of an input's degradation.

    Attributes:
        embedding: B×C×h×w degradation map (pooled to B×C for clustering).
        feature: B×F feature a contrastive loss separates, or ``None``.
        codes: B×h×w codeword indices when the embedding is quantised, else ``None``.
        codebook_size: number of codewords (0 without a codebook).
    """

    embedding: Tensor
    feature: Tensor | None = None
    codes: Tensor | None = None
    codebook_size: int = 0


@runtime_checkable
class DegradationEmbedder(Protocol):
    """A model that can describe an input's degradation (eval mode, no adaptation)."""

    def degradation_embedding(self, x: Tensor) -> DegradationEmbedding:
        """The degradation embedding of a B×3×H×W image in [0, 1]."""
        ...


@runtime_checkable
class InferenceConfigurable(Protocol):
    """A model with options of its own for restoration (e.g. which adapters it uses)."""

    def set_inference_options(self, **options: Any) -> None:
        """Apply ``options`` (ConfigError for an unknown or invalid one)."""
        ...


@runtime_checkable
class DecisionReporter(Protocol):
    """A model that can say what it decided for each image of its last restoration."""

    def describe_decisions(self) -> list[str]:
        """One line per image of the last forward (e.g. a degradation estimate)."""
        ...


@runtime_checkable
class ExternalWeightsUser(Protocol):
    """A model that runs with a frozen network kept outside its weights (e.g. a pretrained
    feature extractor read from a user-supplied file)."""

    def load_external_weights(self) -> None:
        """Load it now (an :class:`aioir.AioirError` naming the option to set when it cannot)."""
        ...


@dataclass(frozen=True)
class TaskSuggestion:
    """A degradation the model read in an image and would restore differently if told it.

    Attributes:
        task: the task name to tell it (``--task``).
        probability: how likely the model read it to be (0–1).
        change: how much telling it would change what the model does (0: nothing, 1: all of
            it; for a mix of candidates, the share of the weight that moves).
        sure: whether the model is sure enough for the hint to be followed unseen
            (``aioir restore --follow-hint`` follows only these; the others are for a user to
            look at the photo and decide).
    """

    task: str
    probability: float
    change: float
    sure: bool = False


@runtime_checkable
class TaskSuggester(Protocol):
    """A model that restores blind, cautiously where it is unsure what is wrong, and can say
    after a restoration which task, if the user told it, would change its choice."""

    def suggested_task(self) -> TaskSuggestion | None:
        """For the first image of the last restoration, the likeliest degradation whose
        ``--task`` would change the result much, or ``None``."""
        ...
