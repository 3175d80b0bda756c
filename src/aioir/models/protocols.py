"""Capabilities a restorer may offer beyond ``forward``, as structural protocols.

Shared code asks for a capability, never for a method: ``aioir embed`` / ``aioir viz clusters``
work with any model that is a :class:`DegradationEmbedder` (UDAIR's codebook embedding today;
ABAIR's and Perceive-IR's degradation features can offer the same); ``aioir restore`` passes
a model's own options (``--adapter-mode`` …) to an :class:`InferenceConfigurable` and prints an
:class:`DecisionReporter`'s per-image decisions (``--explain``); :func:`aioir.restore.resolve_model`
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
