"""Fitting a model's filter bank (:class:`aioir.nn.filter_bank.FilterBankHead`) before training.

1. **Filters**: each is fitted by least squares to one slice of the training degradations of a
   task (``filter_bank.task``, blur by default): one degradation of the task at severities in
   one of ``severity_bins`` equal bins of [0, 1], applied to fixed crops of the training photos.
   Filter ``k`` = degradation ``k // bins``, bin ``k % bins``, degradations in the task's spec
   order (for a task given by name alone: the registry's, sorted by name).
2. **Gate**: fixed crops of every training task are restored once by the (frozen) network; the
   head's descriptor of each crop and the PSNR of each candidate against the clean crop are
   kept; the descriptor normalisation is set from their statistics and the gate MLP is trained
   full-batch to maximise the expected PSNR ``Σⱼ wⱼ·PSNRⱼ`` of its per-image choice. This is a
   mixture-of-experts objective: it pushes each image's weight onto its best candidate, which an
   L1 loss on the mixed image (tried first, in Lightning) did not do in 600 steps.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from aioir.data.synthetic import TaskSpec
from aioir.degradations import available_degradations
from aioir.engine.config import FilterBankConfig
from aioir.errors import ConfigError
from aioir.metrics import psnr
from aioir.nn.filter_bank import FilterBankHead, LeastSquaresFilterFit

__all__ = [
    "filter_bank_groups", "find_filter_bank", "fit_filter_bank", "fit_gate", "gate_examples"
]  # fmt: skip

log = logging.getLogger(__name__)


def find_filter_bank(model: nn.Module) -> FilterBankHead | None:
    """The model's filter-bank head (``model.filter_bank``), or ``None``."""
    head = getattr(model, "filter_bank", None)
    return head if isinstance(head, FilterBankHead) else None


def filter_bank_groups(spec: TaskSpec, task: str, bins: int) -> dict[str, TaskSpec]:
    """One single-degradation spec per (degradation, severity bin), in filter order."""
    degradations: list[Any] = list(spec.degradations) or available_degradations(task)
    groups: dict[str, TaskSpec] = {}
    for d, degradation in enumerate(degradations):
        for b in range(bins):
            groups[f"{task}/{d}/{b}"] = TaskSpec((degradation,), (b / bins, (b + 1) / bins))
    return groups


def fit_filter_bank(
    model: nn.Module, config: FilterBankConfig, datamodule: Any, progress: bool = True
) -> bool:
    """Fit ``model``'s filter bank on ``datamodule``'s training photos; ``True`` if it did.

    Nothing happens for a model without a bank or whose filters are already fitted (unless
    ``config.refit``). Raises :class:`ConfigError` when the bank's size does not match the
    task's degradations × ``config.severity_bins``.
    """
    head = find_filter_bank(model)
    if head is None or (bool(head.fitted) and not config.refit):
        return False
    groups = filter_bank_groups(
        datamodule.task_spec(config.task), config.task, config.severity_bins
    )
    if len(groups) != head.num_filters:
        raise ConfigError(
            f"filter_bank: task {config.task!r} gives {len(groups)} filters "
            f"({len(groups) // config.severity_bins} degradations × {config.severity_bins} bins) "
            f"but the model has {head.num_filters} (model.overrides.filter_bank)"
        )
    pairs = datamodule.synthetic_pairs(groups, config.patches, config.patch_size, salt=3)
    fit = LeastSquaresFilterFit(head.num_filters, head.taps)
    loader = DataLoader(pairs, batch_size=16, shuffle=False)
    for batch in tqdm(loader, desc="fitting filter bank", disable=not progress, leave=False):
        for k in batch["task_id"].unique().tolist():
            pick = batch["task_id"] == k
            fit.add(int(k), batch["input"][pick], batch["target"][pick])
    head.set_filters(fit.solve().to(head.filters.device))
    log.info("fitted %d filters on %d crops each", head.num_filters, config.patches)

    specs = {task: datamodule.task_spec(task) for task in datamodule.task_names}
    crops = datamodule.synthetic_pairs(
        specs, config.gate_items_per_task, config.gate_patch_size, salt=4
    )
    descriptors, scores = gate_examples(
        model, head, DataLoader(crops, batch_size=16, shuffle=False), config.score_cap, progress
    )
    scores[:, 0] += config.output_margin  # the network's output: leave it only for a clear gain
    fit_gate(head, descriptors, scores, config.gate_epochs, config.gate_lr,
             config.gate_weight_decay)  # fmt: skip
    return True


@torch.no_grad()
def gate_examples(
    model: nn.Module, head: FilterBankHead, loader: Any, score_cap: float, progress: bool = True
) -> tuple[Tensor, Tensor]:
    """Descriptors (N×D) and candidate PSNRs (N×(K+2), capped) of ``loader``'s crops."""
    captured: dict[str, Any] = {}
    hook = head.register_forward_hook(lambda _m, args, _out: captured.update(args=args))
    was_training = model.training
    model.eval()
    descriptors, scores = [], []
    try:
        for batch in tqdm(loader, desc="filter-bank gate examples", disable=not progress,
                          leave=False):  # fmt: skip
            target = batch["target"]
            h, w = target.shape[-2:]
            model(batch["input"])
            y, x, features, context = captured["args"]
            descriptors.append(head.descriptor(y, x, features, context).float())
            scores.append(torch.stack([
                psnr(head.candidate(j, y, x)[..., :h, :w].float().clamp(0, 1), target)
                for j in range(head.num_filters + 2)
            ], dim=1).clamp(max=score_cap))  # fmt: skip
    finally:
        hook.remove()
        model.train(was_training)
    return torch.cat(descriptors), torch.cat(scores)


def fit_gate(
    head: FilterBankHead,
    descriptors: Tensor,
    scores: Tensor,
    epochs: int,
    lr: float = 1e-3,
    weight_decay: float = 0.1,
) -> None:
    """Set the descriptor normalisation from ``descriptors``, reset the gate's last layer and
    train the gate full-batch to maximise the mean expected score ``Σⱼ wⱼ·scoreⱼ``."""
    head.set_descriptor_stats(descriptors)
    # start from an unbiased choice: the head's "stay close to the network" initialisation
    # (output logit +5) is for gradient fine-tuning and would anchor this fit on the output
    head.gate[-1].reset_parameters()
    params = list(head.gate.parameters())
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    with torch.enable_grad():
        for _ in range(epochs):
            weights = head.gate(head.normalize(descriptors)).softmax(dim=1)
            loss = -(weights * scores).sum(dim=1).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    log.info("filter-bank gate: expected PSNR %.2f dB on %d crops", -loss.item(), len(scores))
