"""UDAIR's cross-sample contrastive loss (CSCL), registered as the ``cscl`` loss term
(``docs/methods/udair.md``, "Cross-sample contrastive loss").

The batch is task-ordered, ``[t0 × M, t1 × M, …]`` (``T`` tasks, ``M`` samples each). With the
pooled features ``f`` (B×D):

* ``a_t = [f_{t,1} ‖ … ‖ f_{t,M}]`` (batch order), ``b_t = [f_{t,π_t(1)} ‖ … ‖ f_{t,π_t(M)}]``
  with a fresh random permutation ``π_t`` of the task's samples;
* logits ``S = s · A Bᵀ`` (T×T) and ``L = ½ [CE(S, I) + CE(Sᵀ, I)]`` (targets on the diagonal,
  mean over rows).

``mode="faithful"`` is the released code: features are *not* normalised (``M·D`` = 49,152
dimensions for the paper model) and ``s = exp(θ)`` is not clamped; positives use a plain random
permutation, which with ``M = 2`` is the identity half of the time.

``mode="normalized"`` is the CLIP-style variant: ``a_t`` and ``b_t`` are L2-normalised and
``s = min(exp(θ), 100)``, so every logit lies in ``[−100, 100]``. ``positives="derangement"``
forces ``π_t`` to move every sample (with ``M = 2``: always swap the pair); it needs ``M ≥ 2``.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from aioir.errors import ConfigError
from aioir.losses.composite import LossInputs, LossTerm, register_loss

__all__ = ["CSCLOutput", "cscl_loss", "random_derangement", "task_group_permutation"]


CSCLMode = Literal["faithful", "normalized"]
Positives = Literal["permutation", "derangement"]

_MODES: dict[str, CSCLMode] = {"faithful": "faithful", "normalized": "normalized"}
_POSITIVES: dict[str, Positives] = {"permutation": "permutation", "derangement": "derangement"}

#: The CLIP clamp on the logit scale used by ``mode="normalized"``.
MAX_LOGIT_SCALE = 100.0


@dataclasses.dataclass
class CSCLOutput:
    """The loss and what is worth logging about it."""

    loss: Tensor
    logits: Tensor  # T×T, detached
    scale: Tensor  # the scale actually applied, detached
    permutation: Tensor  # T×M, the π_t used (indices inside each task group)


def random_derangement(m: int, generator: torch.Generator | None = None) -> Tensor:
    """A uniformly random permutation of ``range(m)`` without fixed points (``m ≥ 2``)."""
    if m < 2:
        raise ConfigError(f"a derangement needs at least 2 samples per task, got {m}")
    ar = torch.arange(m)
    while True:  # rejection sampling: acceptance probability → 1/e
        perm = torch.randperm(m, generator=generator)
        if not bool((perm == ar).any()):
            return perm


def task_group_permutation(
    num_tasks: int,
    samples_per_task: int,
    positives: Positives = "permutation",
    generator: torch.Generator | None = None,
) -> Tensor:
    """``T×M`` indices: row ``t`` is ``π_t`` (a permutation, or a derangement)."""
    if positives == "permutation":
        rows = [torch.randperm(samples_per_task, generator=generator) for _ in range(num_tasks)]
    elif positives == "derangement":
        rows = [random_derangement(samples_per_task, generator) for _ in range(num_tasks)]
    else:
        raise ConfigError(
            f"cscl positives must be 'permutation' or 'derangement', got {positives!r}"
        )
    return torch.stack(rows)


def cscl_loss(
    features: Tensor,
    logit_scale: Tensor,
    num_tasks: int,
    samples_per_task: int,
    *,
    mode: CSCLMode = "faithful",
    positives: Positives = "permutation",
    permutation: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> CSCLOutput:
    """Cross-sample contrastive loss over task groups (see the module docstring).

    Args:
        features: ``B×D`` (or ``B×…``, flattened) features of a task-ordered batch,
            ``B = num_tasks · samples_per_task``.
        logit_scale: ``s = exp(θ)`` (UDAIR's ``forward_features`` returns it unclamped).
        permutation: optional ``T×M`` permutation to use instead of drawing one (tests).
        generator: source of the random permutations (default: the global torch RNG).
    """
    if mode not in ("faithful", "normalized"):
        raise ConfigError(f"cscl mode must be 'faithful' or 'normalized', got {mode!r}")
    t, m = int(num_tasks), int(samples_per_task)
    if t < 2:
        raise ConfigError(f"CSCL needs at least 2 tasks in a batch, got {t}")
    f = features.flatten(1)
    if f.shape[0] != t * m:
        raise ValueError(
            f"cscl_loss: batch of {f.shape[0]} features is not {t} tasks × {m} samples"
        )
    if permutation is None:
        permutation = task_group_permutation(t, m, positives, generator)
    permutation = permutation.to(f.device)
    groups = f.view(t, m, -1)
    a = groups.reshape(t, -1)
    b = torch.gather(groups, 1, permutation[:, :, None].expand_as(groups)).reshape(t, -1)
    scale = logit_scale
    if mode == "normalized":
        a = F.normalize(a, dim=1)
        b = F.normalize(b, dim=1)
        scale = logit_scale.clamp(max=MAX_LOGIT_SCALE)
    logits = scale * (a @ b.t())
    target = torch.arange(t, device=f.device)
    loss = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))
    return CSCLOutput(loss, logits.detach(), scale.detach(), permutation)


class _CSCL:
    """The ``cscl`` loss term: :func:`cscl_loss` on the step's features."""

    needs_features = True

    def __init__(self, mode: str = "faithful", positives: str = "permutation") -> None:
        if mode not in _MODES:
            raise ConfigError(f"losses.cscl.mode must be 'faithful' or 'normalized', got {mode!r}")
        if positives not in _POSITIVES:
            raise ConfigError(
                f"losses.cscl.positives must be 'permutation' or 'derangement', got {positives!r}"
            )
        self.mode, self.positives = _MODES[mode], _POSITIVES[positives]

    def __call__(self, inputs: LossInputs) -> tuple[Tensor, dict[str, Tensor]]:
        if inputs.features is None or inputs.logit_scale is None:
            raise ConfigError("loss cscl needs a model with forward_features (UDAIR)")
        out = cscl_loss(
            inputs.features.float(),
            inputs.logit_scale.float(),
            inputs.num_tasks,
            inputs.samples_per_task,
            mode=self.mode,
            positives=self.positives,
        )
        logs = {"logit_absmax": out.logits.abs().max(), "scale": out.scale}
        return out.loss, logs


@register_loss("cscl")
def _cscl(mode: str = "faithful", positives: str = "permutation") -> LossTerm:
    """UDAIR's cross-sample contrastive loss (:func:`cscl_loss`)."""
    return _CSCL(mode, positives)
