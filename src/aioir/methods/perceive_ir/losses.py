"""Perceive-IR's loss terms (registered with :func:`aioir.losses.register_loss`).

The paper's total is ``L_rec + 0.1·L_cl + 0.05·L_clip + 0.1·L_dpl``; in a config::

    losses:
      l1: 1.0
      degradation_infonce: 0.1
      clip_quality: {weight: 0.05, clip: ViT-B-32.pt, prompts: prompts.safetensors}
      difficulty_perceptual: {weight: 0.1, vgg16: vgg16.pth, proxies: [{model: medium/}]}

``perceiver_quality`` replaces ``clip_quality`` in the weight-free variant (the stage-1
perceiver, :mod:`aioir.methods.perceive_ir.perceiver`), and ``difficulty_perceptual`` takes
``features: wavelet`` (a fixed Haar pyramid) instead of VGG-16 there.

* ``degradation_infonce`` — InfoNCE on the degradation codes (τ = 0.1): anchor ``Z`` of the
  input, positive ``Z`` of another crop of the same degraded image, negatives the other
  anchors of the (gathered) batch with a different task label, detached; samples without a
  negative are skipped.
* ``clip_quality`` / ``perceiver_quality`` — ``mean(1 − p_high)`` with ``p`` the softmax over
  the three quality tiers of the clamped output (CLIP: cosine similarities to the three prompt
  features, no logit scale by default, as the authors' code).
* ``difficulty_perceptual`` — ``Σ_l λ_l d(φ_l(ŷ), φ_l(y)) / [2·d(φ_l(ŷ), φ_l(x)) +
  Σ_j m_j w_j d(φ_l(ŷ), φ_l(p_j))]`` per sample (``d`` = mean absolute difference, the
  denominator clamped at 1e-6), with the degraded input ``x`` as the easy negative and the
  proxy restorations ``p_j`` as hard negatives; ``w_j = 1.25`` where the proxy's PSNR is at
  most the current model's (the per-epoch probe, :mod:`aioir.methods.perceive_ir.training`),
  else 0.75 (1 before the first probe); ``m_j`` masks proxies outside their tasks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aioir.errors import AioirError, ConfigError
from aioir.losses.composite import LossInputs, LossTerm, register_loss

__all__ = [
    "DifficultyPerceptualLoss",
    "HaarPyramid",
    "QualityLoss",
    "VGGTaps",
    "degradation_infonce",
    "difficulty_weights",
    "patch_psnr",
]


# ------------------------------------------------------------------------------ InfoNCE
def _gather(anchor: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Detached anchors and labels of every process (this one's only outside DDP)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return anchor.detach(), labels.detach()
    world = dist.get_world_size()
    size = torch.tensor([anchor.shape[0]], device=anchor.device)
    sizes = [torch.empty_like(size) for _ in range(world)]
    dist.all_gather(sizes, size)
    top = max(int(s.item()) for s in sizes)
    feats = F.pad(anchor.detach(), (0, 0, 0, top - anchor.shape[0]))
    labs = F.pad(labels.detach(), (0, top - labels.shape[0]), value=-1)
    all_feats = [torch.empty_like(feats) for _ in range(world)]
    all_labs = [torch.empty_like(labs) for _ in range(world)]
    dist.all_gather(all_feats, feats)
    dist.all_gather(all_labs, labs)
    n = [int(s.item()) for s in sizes]
    return (
        torch.cat([f[:k] for f, k in zip(all_feats, n, strict=True)]),
        torch.cat([f[:k] for f, k in zip(all_labs, n, strict=True)]),
    )


def degradation_infonce(
    anchor: Tensor, positive: Tensor, labels: Tensor, temperature: float = 0.1
) -> tuple[Tensor, float]:
    """InfoNCE of L2-normalised codes (see the module docstring) and the fraction of samples
    that had a negative."""
    bank, bank_labels = _gather(anchor, labels)
    pos = (anchor * positive).sum(dim=-1, keepdim=True) / temperature
    neg = anchor @ bank.t() / temperature
    valid = bank_labels[None, :] != labels[:, None]
    neg = neg.masked_fill(~valid, float("-inf"))
    rows = valid.any(dim=1)
    if not bool(rows.any()):
        return anchor.sum() * 0.0, 0.0
    logits = torch.cat([pos, neg], dim=1)[rows]
    target = torch.zeros(logits.shape[0], dtype=torch.long, device=anchor.device)
    return F.cross_entropy(logits, target), float(rows.float().mean())


class _InfoNCE:
    needs_features = True

    def __init__(self, temperature: float) -> None:
        self.temperature = float(temperature)

    def __call__(self, inputs: LossInputs) -> tuple[Tensor, dict[str, Tensor]]:
        positive = getattr(inputs.outputs, "positive", None)
        if inputs.features is None or positive is None or inputs.task_ids is None:
            raise ConfigError(
                "losses.degradation_infonce: needs a model whose forward_features gives a "
                "degradation code and a positive (perceive-ir, perceive-ir-lite) and task ids"
            )
        labels = inputs.task_ids.to(inputs.features.device)
        value, fraction = degradation_infonce(inputs.features, positive, labels, self.temperature)
        return value, {"valid": torch.tensor(fraction)}


@register_loss("degradation_infonce")
def _degradation_infonce(temperature: float = 0.1) -> LossTerm:
    """InfoNCE on Perceive-IR's degradation codes (task labels pick the negatives)."""
    if not temperature > 0:
        raise ConfigError(
            f"losses.degradation_infonce.temperature: expected > 0, not {temperature}"
        )
    return _InfoNCE(temperature)


# ------------------------------------------------------------------------------ quality
class QualityLoss:
    """``mean(1 − p_high)`` for a frozen scorer giving logits over (low, medium, high)."""

    needs_features = False

    def __init__(self, scorer: nn.Module, temperature: float = 1.0) -> None:
        self.scorer = scorer.requires_grad_(False).eval()
        self.temperature = float(temperature)

    def probabilities(self, image: Tensor) -> Tensor:
        """Softmax over the three tiers of the clamped ``image`` (B×3)."""
        self.scorer.to(image.device)
        return (self.scorer(image.clamp(0, 1)) / self.temperature).softmax(dim=-1)

    def __call__(self, inputs: LossInputs) -> tuple[Tensor, dict[str, Tensor]]:
        p = self.probabilities(inputs.pred)
        return (1.0 - p[:, 2]).mean(), {}


def _load(key: str, loader: Callable[[], nn.Module]) -> nn.Module:
    try:
        return loader()
    except AioirError as exc:
        raise ConfigError(f"{key}: {exc}") from exc


@register_loss("perceiver_quality")
def _perceiver_quality(perceiver: str | None = None, temperature: float = 1.0) -> LossTerm:
    """``1 − p_high`` from the stage-1 quality perceiver (a file or the stage-1 export)."""
    from aioir.methods.perceive_ir.perceiver import load_perceiver

    if not perceiver:
        raise ConfigError(
            "losses.perceiver_quality.perceiver: set it to the stage-1 run's export folder "
            "(or its quality_perceiver.safetensors)"
        )
    scorer = _load("losses.perceiver_quality.perceiver", lambda: load_perceiver(perceiver))
    return QualityLoss(scorer, temperature)


@register_loss("clip_quality")
def _clip_quality(
    clip: str | None = None, prompts: str | None = None, logit_scale: float | None = None
) -> LossTerm:
    """``1 − p_excellent`` from frozen CLIP ViT-B/32 and the stage-1 quality prompts."""
    from aioir.methods.perceive_ir.quality_prompts import load_quality_scorer

    for key, value in (("clip", clip), ("prompts", prompts)):
        if not value:
            raise ConfigError(
                f"losses.clip_quality.{key}: set it to the "
                + ("OpenAI CLIP ViT-B/32 weights file" if key == "clip" else "stage-1 prompts")
            )
    assert clip is not None and prompts is not None
    scorer = _load("losses.clip_quality", lambda: load_quality_scorer(clip, prompts, logit_scale))
    return QualityLoss(scorer)


# ------------------------------------------------------------------------------ perceptual
class VGGTaps(nn.Module):
    """VGG-16 ``features[:16]`` taps relu1_2, conv2_2 (before its ReLU), relu3_1, relu3_3 —
    the indices 3, 7, 11, 15 of the authors' loss; input clamped and ImageNet-normalised."""

    indices = (3, 7, 11, 15)

    def __init__(self, path: str) -> None:
        super().__init__()
        from aioir.nn.vgg import load_vgg16_features

        self.vgg = load_vgg16_features(path, last="relu3_3")

    def forward(self, x: Tensor) -> list[Tensor]:
        h = (x.clamp(0, 1) - self.vgg.mean) / self.vgg.std
        out = []
        for i, layer in enumerate(self.vgg.features):
            h = layer(h)
            if i in self.indices:
                out.append(h)
        return out


class HaarPyramid(nn.Module):
    """A fixed, non-learned feature space: ``levels`` Haar wavelet levels of the clamped image,
    each giving its three detail bands and its low-pass band (12 maps at 1/2, 1/4, …)."""

    def __init__(self, levels: int = 4) -> None:
        super().__init__()
        self.levels = levels
        h = torch.tensor([[1.0, 1.0], [1.0, 1.0]]) / 2
        bands = [h, torch.tensor([[1.0, -1.0], [1.0, -1.0]]) / 2]
        bands += [torch.tensor([[1.0, 1.0], [-1.0, -1.0]]) / 2]
        bands += [torch.tensor([[1.0, -1.0], [-1.0, 1.0]]) / 2]
        kernel = torch.stack(bands)[:, None].repeat(3, 1, 1, 1)  # 12×1×2×2, grouped per colour
        self.register_buffer("kernel", kernel, persistent=False)

    def forward(self, x: Tensor) -> list[Tensor]:
        out = []
        h = x.clamp(0, 1)
        for _ in range(self.levels):
            h = h[..., : h.shape[-2] // 2 * 2, : h.shape[-1] // 2 * 2]
            coeffs = F.conv2d(h, self.kernel.to(h.dtype), stride=2, groups=3)
            out.append(coeffs)
            h = coeffs[:, 0::4]  # the low-pass band of each colour
        return out


def patch_psnr(image: Tensor, target: Tensor) -> Tensor:
    """Per-sample PSNR (dB) of ``image`` clamped to [0, 1] against ``target`` (MSE ≥ 1e-8)."""
    mse = (image.float().clamp(0, 1) - target.float()).square().mean(dim=(1, 2, 3))
    return -10.0 * torch.log10(mse.clamp_min(1e-8))


def difficulty_weights(
    proxy_psnr: Tensor, reference: float | None, hard: float = 1.25, easy: float = 0.75
) -> Tensor:
    """``hard`` where the proxy is no better than the model's probe PSNR, else ``easy``; 1
    before the first probe."""
    if reference is None:
        return torch.ones_like(proxy_psnr)
    return torch.where(
        proxy_psnr <= reference,
        torch.full_like(proxy_psnr, hard),
        torch.full_like(proxy_psnr, easy),
    )


class DifficultyPerceptualLoss:
    """The contrastive-ratio perceptual loss with difficulty-weighted proxy negatives."""

    needs_features = False

    def __init__(
        self,
        features: nn.Module,
        layer_weights: Sequence[float],
        proxies: Sequence[tuple[nn.Module, frozenset[str] | None]] = (),
        input_weight: float = 2.0,
        hard_weight: float = 1.25,
        easy_weight: float = 0.75,
    ) -> None:
        self.features = features
        self.layer_weights = [float(w) for w in layer_weights]
        self.proxies = list(proxies)
        self.input_weight = float(input_weight)
        self.hard_weight, self.easy_weight = float(hard_weight), float(easy_weight)
        #: the current model's mean PSNR on the probe (set at every epoch start)
        self.reference_psnr: float | None = None

    def set_reference_psnr(self, value: float | None) -> None:
        """The probe's PSNR that splits hard from easy proxies (``None``: weights 1)."""
        self.reference_psnr = value

    def proxy_outputs(
        self, degraded: Tensor, task_ids: Tensor | None, task_names: Sequence[str]
    ) -> list[tuple[Tensor, Tensor]]:
        """``(restoration, mask)`` of every proxy for the batch (frozen, no gradients)."""
        out = []
        for model, tasks in self.proxies:
            model.to(degraded.device)
            with torch.no_grad():
                restored = model(degraded).clamp(0, 1)
            mask = torch.ones(degraded.shape[0], device=degraded.device)
            if tasks is not None:
                if task_ids is None:
                    raise ConfigError("losses.difficulty_perceptual.proxies: no task ids")
                allowed = torch.tensor(
                    [t in tasks for t in task_names], dtype=torch.float32, device=mask.device
                )
                mask = allowed[task_ids.to(mask.device).long()]
            out.append((restored, mask))
        return out

    def loss(
        self,
        restored: Tensor,
        target: Tensor,
        degraded: Tensor,
        proxies: Sequence[tuple[Tensor, Tensor]] = (),
        weights: Sequence[Tensor] = (),
    ) -> Tensor:
        """The loss for given proxy restorations, masks and difficulty weights."""
        self.features.to(restored.device)
        ours = self.features(restored)
        with torch.no_grad():
            gt = self.features(target)
            low = self.features(degraded)
            negatives = [self.features(p) for p, _ in proxies]

        def d(a: Tensor, b: Tensor) -> Tensor:
            return (a - b).abs().mean(dim=(1, 2, 3))

        total = restored.new_zeros(restored.shape[0])
        for level, lam in enumerate(self.layer_weights):
            denominator = self.input_weight * d(ours[level], low[level])
            for j, (_, mask) in enumerate(proxies):
                w = weights[j] if weights else 1.0
                denominator = denominator + mask * w * d(ours[level], negatives[j][level])
            total = total + lam * d(ours[level], gt[level]) / denominator.clamp_min(1e-6)
        return total.mean()

    def __call__(self, inputs: LossInputs) -> tuple[Tensor, dict[str, Tensor]]:
        degraded = inputs.batch.get("input")
        if degraded is None:
            raise ConfigError("losses.difficulty_perceptual: the batch has no degraded input")
        proxies = self.proxy_outputs(degraded, inputs.task_ids, inputs.task_names)
        weights = [
            difficulty_weights(
                patch_psnr(p, inputs.target), self.reference_psnr, self.hard_weight,
                self.easy_weight,
            ).to(inputs.pred.dtype)
            for p, _ in proxies
        ]  # fmt: skip
        value = self.loss(inputs.pred, inputs.target, degraded, proxies, weights)
        logs: dict[str, Tensor] = {}
        if proxies and self.reference_psnr is not None:
            hard = torch.stack([(w > 1).float() * m for w, (_, m) in zip(weights, proxies)])
            count = torch.stack([m for _, m in proxies]).sum().clamp_min(1)
            logs["hard_rate"] = (hard.sum() / count).detach()
        return value, logs


def _proxy_list(proxies: Any) -> list[tuple[nn.Module, frozenset[str] | None]]:
    from aioir.models import load_model

    where = "losses.difficulty_perceptual.proxies"
    if proxies is None:
        return []
    if not isinstance(proxies, Sequence) or isinstance(proxies, str):
        raise ConfigError(f"{where}: expected a list of {{model, checkpoint, tasks}}")
    out = []
    for i, item in enumerate(proxies):
        spec: Mapping[str, Any] = {"model": item} if isinstance(item, str) else item
        if not isinstance(spec, Mapping) or "model" not in spec:
            raise ConfigError(f"{where}[{i}]: expected a saved model path or {{model: …}}")
        unknown = set(spec) - {"model", "checkpoint", "tasks"}
        if unknown:
            raise ConfigError(f"{where}[{i}]: unknown keys {sorted(unknown)}")
        try:
            model = load_model(spec["model"], checkpoint=spec.get("checkpoint"))
        except AioirError as exc:
            raise ConfigError(f"{where}[{i}].model: {exc}") from exc
        tasks = spec.get("tasks")
        out.append((model.requires_grad_(False).eval(), frozenset(tasks) if tasks else None))
    return out


@register_loss("difficulty_perceptual")
def _difficulty_perceptual(
    features: str = "vgg16",
    vgg16: str | None = None,
    proxies: Any = None,
    layer_weights: Sequence[float] = (1 / 12, 1 / 6, 1 / 3, 1.0),
    input_weight: float = 2.0,
    hard_weight: float = 1.25,
    easy_weight: float = 0.75,
) -> LossTerm:
    """Difficulty-adaptive perceptual loss (VGG-16 from a file, or a fixed Haar pyramid)."""
    where = "losses.difficulty_perceptual"
    if features == "vgg16":
        if not vgg16:
            raise ConfigError(
                f"{where}.vgg16: set it to torchvision's VGG-16 weights file "
                "(or use features: wavelet, the weight-free feature space)"
            )
        extractor: nn.Module = _load(f"{where}.vgg16", lambda: VGGTaps(vgg16))
    elif features == "wavelet":
        extractor = HaarPyramid(len(layer_weights))
    else:
        raise ConfigError(f"{where}.features: expected 'vgg16' or 'wavelet', not {features!r}")
    if len(layer_weights) != 4 and features == "vgg16":
        raise ConfigError(f"{where}.layer_weights: VGG-16 has 4 taps")
    return DifficultyPerceptualLoss(
        extractor, layer_weights, _proxy_list(proxies), input_weight, hard_weight, easy_weight
    )
