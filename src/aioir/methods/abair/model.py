"""ABAIR (Serrano-Lozano et al., arXiv 2411.18412): the network, its adapters and estimator.

* Backbone: PromptIR (Restormer + three decoder prompt blocks) whose every transformer block
  ends with a CBAM-style spatial gate (:class:`GatedTransformerBlock`,
  :class:`aioir.nn.gates.SpatialGate`).
* Adapters: every 1×1 projection of every transformer block (MDTA ``qkv`` and
  ``project_out``, GDFN ``project_in`` and ``project_out``) is a
  :class:`aioir.nn.adapters.MultiLoRAConv2d` holding one rank-4 LoRA adapter per task of
  ``tasks``, side by side.
* Estimator (:class:`DegradationEstimator`): a small CNN on a downscaled copy of the input
  giving per-image task logits (softmax for single labels; sigmoid when ``multi_label``).
* Segmentation head (training phase I only, ``segmentation_classes > 0``): per-pixel logits over
  ``clean + tasks`` from the refinement features; :meth:`ABAIR.drop_segmentation_head` removes
  it before the restorer is saved.

Inference modes (:data:`ADAPTER_MODES`, :meth:`ABAIR.set_inference_options`): ``soft`` blends
the adapters with the estimator's probabilities (``W + Σ_k p_k ΔW_k``, one forward), ``onehot``
uses the most probable adapter, ``oracle`` the adapter of a given task, ``off`` none (the
pre-trained backbone). :meth:`ABAIR.merge_task` folds one adapter into the weights for
deployment. The estimator's decision is per image (:mod:`aioir.nn.image_statistics`): the
tiles of a tiled restoration share it. Sizes and every choice the paper leaves open:
``docs/methods/abair.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aioir.errors import ConfigError
from aioir.methods.promptir.model import PromptIR
from aioir.models.registry import Preset, register_presets
from aioir.nn.adapters import (
    add_lora_adapter,
    inject_lora,
    lora_adapter_count,
    merge_lora,
    set_adapter_weights,
    unmerge_lora,
)
from aioir.nn.blocks import BlockSequence, TransformerBlock
from aioir.nn.gates import SpatialGate
from aioir.nn.image_statistics import crop_count, image_statistic, pool_crops
from aioir.nn.padding import pad_to_multiple, unpad
from aioir.tasks import split_composite

__all__ = [
    "ABAIR",
    "ADAPTER_MODES",
    "ABAIRFeatures",
    "DegradationEstimator",
    "GatedTransformerBlock",
    "SegmentationHead",
]

#: inference modes: estimator blend, estimator argmax, a given task's adapter, no adapter
ADAPTER_MODES: tuple[str, ...] = ("soft", "onehot", "oracle", "off")
#: the 1×1 projections that carry adapters (suffixes of the block's module names)
LORA_TARGETS: tuple[str, ...] = (
    "attn.qkv",
    "attn.project_out",
    "ffn.project_in",
    "ffn.project_out",
)
_LEVELS = (
    "encoder_level1", "encoder_level2", "encoder_level3", "latent",
    "decoder_level3", "decoder_level2", "decoder_level1", "refinement",
)  # fmt: skip
_PROMPT_BLOCKS = ("noise_level1", "noise_level2", "noise_level3")


class GatedTransformerBlock(TransformerBlock):
    """A Restormer block followed by a spatial gate: ``x ← SG(TB(x))`` (keys
    ``spatial_gate.conv.*`` beside the block's own)."""

    def __init__(self, dim: int, num_heads: int, gate_kernel: int = 7, **block: Any) -> None:
        super().__init__(dim, num_heads, **block)
        self.spatial_gate = SpatialGate(gate_kernel)

    def forward(self, x: Tensor, cond: Any = None) -> Tensor:
        return self.spatial_gate(super().forward(x, cond))


class DegradationEstimator(nn.Module):
    """Per-image task logits from a ``size×size`` downscaled copy of the input.

    Three stride-2 3×3 convolutions (``3→w→2w→4w``, GELU), the global mean (pooled over the
    crops of a tiled image, :func:`~aioir.nn.image_statistics.pool_crops`) and a linear head
    (``4w→K``). Its logits are a per-image decision: the tiles of a tiled restoration share the
    whole image's. :attr:`last_logits` keeps those of the last images it looked at (``B×K``).
    """

    image_statistics = True

    def __init__(self, num_tasks: int, width: int = 32, size: int = 64) -> None:
        super().__init__()
        if num_tasks < 1:
            raise ValueError("the estimator needs at least one task")
        self.size = int(size)
        self.features = nn.Sequential(
            nn.Conv2d(3, width, 3, stride=2, padding=1),
            nn.GELU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1),
            nn.GELU(),
            nn.Conv2d(2 * width, 4 * width, 3, stride=2, padding=1),
            nn.GELU(),
        )
        self.head = nn.Linear(4 * width, num_tasks)
        self.last_logits: Tensor | None = None

    @property
    def num_tasks(self) -> int:
        """``K``, the tasks it tells apart."""
        return self.head.out_features

    def _compute(self, x: Tensor) -> Tensor:
        small = F.interpolate(
            x.float(), size=(self.size, self.size), mode="bilinear", align_corners=False,
            antialias=True,
        )  # fmt: skip
        pooled = pool_crops(self.features(small.to(x.dtype)).mean(dim=(2, 3)))
        logits = self.head(pooled)
        self.last_logits = logits[: logits.shape[0] // crop_count()].detach().float().cpu()
        return logits

    def forward(self, x: Tensor) -> Tensor:
        """Task logits (B×K) of a B×3×H×W image."""
        return image_statistic(self, x.shape[0], lambda: self._compute(x))

    @torch.no_grad()
    def add_task(self) -> None:
        """Grow the head by one output (the old rows kept; the estimator is re-trained)."""
        old = self.head
        new = nn.Linear(old.in_features, old.out_features + 1, device=old.weight.device)
        new.weight[: old.out_features] = old.weight
        new.bias[: old.out_features] = old.bias
        self.head = new


class SegmentationHead(nn.Module):
    """Per-pixel class logits from features: 3×3 ``C→C/2``, GELU, 1×1 ``C/2→classes``."""

    def __init__(self, channels: int, classes: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels // 2, 3, padding=1),
            nn.GELU(),
            nn.Conv2d(channels // 2, classes, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


@dataclass
class ABAIRFeatures:
    """:meth:`ABAIR.forward_features`: the restored image, the segmentation logits (B×C×H×W,
    or ``None`` without a head; also as ``feature``), the estimator's task logits (B×K, or
    ``None`` without tasks) and the tasks they score. ``logit_scale`` is ``None``."""

    image: Tensor
    segmentation: Tensor | None
    task_logits: Tensor | None
    tasks: tuple[str, ...] = ()
    logit_scale: Tensor | None = None

    @property
    def feature(self) -> Tensor | None:
        """The segmentation logits (what :class:`aioir.losses.LossInputs` calls features)."""
        return self.segmentation


class ABAIR(PromptIR):
    """ABAIR: gated PromptIR backbone + per-task multi-adapter LoRA + degradation estimator.

    Args (keywords, besides PromptIR's and the backbone's):
        tasks: the adapters' task names, in adapter order (none: the bare backbone of phase I).
        lora_rank, lora_alpha: rank ``r`` and ``α`` (default ``r``) of every adapter.
        estimator_width, estimator_size: the estimator's width ``w`` and input side.
        multi_label: the estimator's probabilities are sigmoids (composite inputs, multi-hot
            labels) instead of a softmax.
        segmentation_classes: build the phase-I segmentation head with this many classes
            (``1 + number of pre-training tasks``: 0 = clean); 0 = none.
        gate_kernel: the spatial gates' kernel side.
        adapter_mode: the default inference mode (:data:`ADAPTER_MODES`).
    """

    def __init__(
        self,
        *,
        tasks: Sequence[str] = (),
        lora_rank: int = 4,
        lora_alpha: float | None = None,
        estimator_width: int = 32,
        estimator_size: int = 64,
        multi_label: bool = False,
        segmentation_classes: int = 0,
        gate_kernel: int = 7,
        adapter_mode: str = "soft",
        **promptir: Any,
    ) -> None:
        super().__init__(**{"parity_layers": False, **promptir})
        tb = self.block_options
        for name in _LEVELS:
            old = getattr(self, name)
            setattr(self, name, BlockSequence(*[self._gated(b, gate_kernel, tb) for b in old]))
        for name in _PROMPT_BLOCKS:
            setattr(self, name, self._gated(getattr(self, name), gate_kernel, tb))
        self.lora_rank, self.lora_alpha = int(lora_rank), lora_alpha
        inject_lora(self, lambda n, _: n.endswith(LORA_TARGETS), lora_rank, lora_alpha)
        self.tasks: list[str] = []
        self.estimator_width, self.estimator_size = int(estimator_width), int(estimator_size)
        self.multi_label = bool(multi_label)
        self.estimator: DegradationEstimator | None = None
        #: explicit per-sample adapter weights (B×K or 1×K) overriding the mode (training)
        self.task_weights: Tensor | None = None
        self.merged_task: str | None = None
        for task in tasks:
            self.add_task(task)
        self.segmentation_head = (
            SegmentationHead(self.feature_channels, segmentation_classes)
            if segmentation_classes > 0
            else None
        )
        self.adapter_mode = "soft"
        self.oracle_task: str | None = None
        self.set_inference_options(adapter_mode=adapter_mode)

    @staticmethod
    def _gated(block: TransformerBlock, kernel: int, tb: dict[str, Any]) -> GatedTransformerBlock:
        return GatedTransformerBlock(block.attn.qkv.in_channels, block.attn.num_heads, kernel, **tb)

    # ---------------------------------------------------------------- tasks and adapters
    @property
    def num_tasks(self) -> int:
        """``K``, the adapters (= tasks) held."""
        return len(self.tasks)

    def add_task(self, task: str) -> int:
        """A new adapter (``B = 0``: no change until trained) and estimator output for ``task``;
        everything else is untouched. Returns the adapter index."""
        if self.merged_task is not None:
            raise ConfigError("unmerge the adapters before adding a task")
        if task in self.tasks:
            raise ConfigError(f"the model already has an adapter for task {task!r}")
        index = add_lora_adapter(self)
        if self.estimator is None:
            self.estimator = DegradationEstimator(1, self.estimator_width, self.estimator_size)
        else:
            self.estimator.add_task()
        self.tasks.append(str(task))
        config = getattr(self, "aioir_config", None)
        if isinstance(config, dict):  # a saved model rebuilds with the new task list
            config.setdefault("overrides", {})["tasks"] = list(self.tasks)
        assert lora_adapter_count(self) == index + 1 == self.estimator.num_tasks
        return index

    def task_index(self, task: str) -> int:
        """The adapter index of ``task`` (ConfigError naming the known tasks)."""
        if task not in self.tasks:
            known = ", ".join(self.tasks) or "none"
            raise ConfigError(f"the model has no adapter for task {task!r} (tasks: {known})")
        return self.tasks.index(task)

    def one_hot(self, task: str) -> Tensor:
        """``1×K`` adapter weights selecting ``task``; a composite ``a+b`` selects each of its
        tasks with weight 1 (multi-hot: the oracle of a composite degradation)."""
        w = torch.zeros(1, self.num_tasks)
        for part in split_composite(task):
            w[0, self.task_index(part)] = 1.0
        return w

    def drop_segmentation_head(self) -> None:
        """Remove the phase-I segmentation head (before saving the restorer)."""
        self.segmentation_head = None
        config = getattr(self, "aioir_config", None)
        if isinstance(config, dict):
            config.setdefault("overrides", {}).pop("segmentation_classes", None)

    def merge_task(self, task: str) -> None:
        """Fold ``task``'s adapter into the weights (one-hot deployment: no adapter cost)."""
        weights = self.one_hot(task)[0]
        merge_lora(self, weights)
        self.merged_task = task

    def unmerge(self) -> None:
        """Undo :meth:`merge_task`."""
        unmerge_lora(self)
        self.merged_task = None

    # ---------------------------------------------------------------- inference options
    def set_inference_options(
        self, adapter_mode: str | None = None, task: str | None = None
    ) -> None:
        """Choose the inference mode (:data:`ADAPTER_MODES`) and, for ``oracle``, the task
        (``task`` alone implies ``oracle``). ConfigError for an unknown mode or task."""
        if adapter_mode is None and task is not None:
            adapter_mode = "oracle"
        mode = self.adapter_mode if adapter_mode is None else str(adapter_mode)
        if mode not in ADAPTER_MODES:
            raise ConfigError(
                f"adapter mode must be one of {', '.join(ADAPTER_MODES)}, not {mode!r}"
            )
        if task is not None and mode != "oracle":
            raise ConfigError(f"a task is given only with the oracle mode, not with {mode!r}")
        if mode == "oracle":
            if task is None:
                raise ConfigError("the oracle mode needs a task (e.g. haze, or haze+rain)")
            self.one_hot(task)
        elif mode in ("soft", "onehot") and self.tasks and self.estimator is None:
            raise ConfigError(f"the {mode} mode needs the estimator")
        self.adapter_mode, self.oracle_task = mode, task

    def task_probabilities(self, logits: Tensor) -> Tensor:
        """The estimator's probabilities (softmax, or sigmoid when ``multi_label``)."""
        return torch.sigmoid(logits) if self.multi_label else logits.softmax(dim=-1)

    def describe_decisions(self) -> list[str]:
        """One line per image of the last restoration: the estimator's probability per task
        and the adapter weights the mode made of them."""
        est = self.estimator
        if est is None or est.last_logits is None:
            return [f"mode {self.adapter_mode}: no estimate (the model has no adapters)"]
        lines = []
        for row in self.task_probabilities(est.last_logits):
            probs = " ".join(f"{t}={float(p):.3f}" for t, p in zip(self.tasks, row, strict=True))
            if self.merged_task is not None:
                use = f"merged {self.merged_task}"
            elif self.adapter_mode == "onehot":
                use = f"onehot {self.tasks[int(row.argmax())]}"
            elif self.adapter_mode == "oracle":
                use = f"oracle {self.oracle_task}"
            else:
                use = self.adapter_mode
            lines.append(f"{probs} -> {use}")
        return lines

    # ---------------------------------------------------------------- forward
    def _weights(self, logits: Tensor | None) -> Tensor | None:
        if not self.tasks or self.merged_task is not None:
            return None
        if self.task_weights is not None:
            return self.task_weights
        mode = self.adapter_mode
        if mode == "off":
            return None
        if mode == "oracle":
            assert self.oracle_task is not None
            return self.one_hot(self.oracle_task)
        assert logits is not None
        probs = self.task_probabilities(logits)
        if mode == "onehot":
            return F.one_hot(probs.argmax(dim=-1), self.num_tasks).to(probs.dtype)
        return probs

    def _estimate(self, x: Tensor) -> Tensor | None:
        """The estimator's logits when the mode needs them or in eval mode (for
        :meth:`describe_decisions`; the estimator is cheap), else ``None``."""
        if self.estimator is None:
            return None
        needed = self.merged_task is None and self.task_weights is None
        if self.training and not (needed and self.adapter_mode in ("soft", "onehot")):
            return None
        return self.estimator(x)

    def _run(self, x: Tensor, ctx: Any, logits: Tensor | None) -> tuple[Tensor, Tensor, Any]:
        set_adapter_weights(self, self._weights(logits))
        try:
            return super()._decode(x, ctx)
        finally:
            set_adapter_weights(self, None)

    def _decode(self, x: Tensor, ctx: Any) -> tuple[Tensor, Tensor, Any]:
        return self._run(x, ctx, self._estimate(x))

    def forward_features(self, x: Tensor) -> ABAIRFeatures:
        """Training forward: the restored image, the segmentation logits (with a head) and the
        estimator's task logits (with tasks), all at ``x``'s size."""
        xp, size = pad_to_multiple(x, self.size_multiple)
        logits = self.estimator(xp) if self.estimator is not None else None
        out, features, _ = self._run(xp, None, logits)
        seg = None
        if self.segmentation_head is not None:
            seg = unpad(self.segmentation_head(features), size)
        return ABAIRFeatures(unpad(out, size), seg, logits, tuple(self.tasks))


# ------------------------------------------------------------------------------ presets
#: the five tasks of the all-in-one 5-task setting, in aioir's canonical order
FIVE_TASKS: tuple[str, ...] = ("noise", "rain", "haze", "lowlight", "blur")

ABAIR_PRESETS: dict[str, Preset] = {
    "paper": Preset(
        {"dim": 60, "prompt_dims": (80, 160, 400), "tasks": FIVE_TASKS},
        parameters=57_884_389,
        description="ABAIR (arXiv 2411.18412), dim 60, 5 rank-4 adapters (sizes ours: no code)",
    ),
    "small": Preset(
        {
            "dim": 32,
            "num_blocks": (2, 3, 3, 4),
            "num_refinement_blocks": 2,
            "prompt_dims": (32, 64, 160),
            "tasks": FIVE_TASKS,
        },
        parameters=11_169_851,
        description="ABAIR, dim 32, fewer blocks, 5 adapters",
    ),
    "tiny": Preset(
        {
            "dim": 16,
            "num_blocks": (1, 1, 1, 1),
            "num_refinement_blocks": 1,
            "prompt_dims": (8, 16, 32),
            "prompt_sizes": (32, 16, 8),
            "tasks": FIVE_TASKS,
            "estimator_width": 16,
        },
        parameters=1_345_030,
        description="ABAIR, dim 16, one block per level, 5 adapters (tests)",
    ),
}

register_presets("abair", ABAIR, ABAIR_PRESETS)
