"""CPL's contrastive prompt regularisation (CPR), registered as the ``cpr`` loss term, and a
weight-free variant ``cpr-selffeat`` (``docs/methods/cpl.md``, "Contrastive prompt
regularisation").

Each training step draws ``J`` negative restorations ``ŷ_neg,j`` of the same input with
mismatched prompts (:meth:`aioir.methods.cpl.CPL.forward_negatives`, no gradient) and, with
channel-L2-normalised features ``φ̂_l`` and ``d(a, b) = mean |a − b|``:

* ``form: subtractive`` (default; the authors' code and its precursor MCLIR)::

      L_cpr = − (1/J) Σ_j Σ_l w_l · d(φ̂_l(ŷ), φ̂_l(ŷ_neg,j))

  so ``losses: {l1: 1, cpr: 1.0e-3}`` is ``L1 − λ·…`` with ``λ = 1e-3``;
* ``form: ratio`` (the paper figure's pull/push picture)::

      L_cpr = Σ_l w_l · d(φ̂_l(ŷ), φ̂_l(y)) / ((1/J) Σ_j d(φ̂_l(ŷ), φ̂_l(ŷ_neg,j)) + ε)

``negatives_reduction: sum`` replaces ``1/J`` by 1 (the authors' CPLIR code sums).

``cpr``: VGG-16 ``relu1_2 / relu2_2 / relu3_3`` weighted ``0.2 / 0.3 / 0.5`` (MCLIR's values),
ImageNet-normalised input, weights from a user-supplied file in torchvision's layout
(``vgg_weights``, or ``aioir train --vgg-weights PATH``). ``cpr-selffeat``: the same loss in
the encoder features of the network being trained (levels 1–3 weighted ``0.2 / 0.3 / 0.5``),
its weights frozen for this term — the gradient reaches ``ŷ`` only; it needs no file and is not
the paper's CPR.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from aioir.errors import ConfigError
from aioir.losses.composite import LossInputs, LossTerm, register_loss
from aioir.models.wrappers import unwrap
from aioir.nn.padding import pad_to_multiple
from aioir.nn.vgg import VGG16_LAYERS, VGG16Features, load_vgg16_features

__all__ = [
    "ENCODER_LAYERS",
    "VGG_LAYERS",
    "ContrastivePromptLoss",
    "EncoderFeatures",
    "contrastive_prompt_loss",
]

#: MCLIR's perceptual taps and weights (the precursor's released options).
VGG_LAYERS: dict[str, float] = {"relu1_2": 0.2, "relu2_2": 0.3, "relu3_3": 0.5}
#: ``cpr-selffeat``'s taps: the restorer's encoder levels, weighted as the VGG taps.
ENCODER_LAYERS: dict[str, float] = {
    "encoder_level1": 0.2,
    "encoder_level2": 0.3,
    "encoder_level3": 0.5,
}
FORMS = ("subtractive", "ratio")
REDUCTIONS = ("mean", "sum")
RATIO_EPS = 1e-7

#: image ``B×C×H×W`` and the network being trained → ``{tap: B×C'×h×w}``
FeatureFn = Callable[[Tensor, nn.Module], dict[str, Tensor]]


def _distance(a: Tensor, b: Tensor) -> Tensor:
    """``mean |a − b|`` over everything but a leading negatives axis of ``b`` (``J×B×…``)."""
    return (a.unsqueeze(0) - b).abs().flatten(1).mean(dim=1)


def contrastive_prompt_loss(
    pred: Tensor,
    target: Tensor,
    negatives: Tensor,
    features: Callable[[Tensor], dict[str, Tensor]],
    layers: Mapping[str, float],
    form: str = "subtractive",
    negatives_reduction: str = "mean",
    normalize: bool = True,
) -> tuple[Tensor, dict[str, Tensor]]:
    """CPR for a restoration ``pred`` (``B×C×H×W``), its ``target`` and ``negatives``
    (``J×B×C×H×W``, constants) in the feature space ``features`` (see the module doc).

    Returns the loss and ``{"push": weighted mean negative distance}`` (+ ``"pull"`` for the
    ratio form) for logging.
    """
    j = negatives.shape[0]

    def norm(f: Tensor) -> Tensor:
        return F.normalize(f, dim=1) if normalize else f

    taps = list(layers)
    fp = features(pred)
    with torch.no_grad():
        fn = features(negatives.flatten(0, 1))
        ft = features(target) if form == "ratio" else {}
    total = pred.new_zeros(())
    push_log = pred.new_zeros(())
    pull_log = pred.new_zeros(())
    for tap in taps:
        w = float(layers[tap])
        p = norm(fp[tap])
        n = norm(fn[tap]).view(j, *p.shape)
        d_neg = _distance(p, n)  # J
        push = d_neg.mean() if negatives_reduction == "mean" else d_neg.sum()
        push_log = push_log + w * push.detach()
        if form == "subtractive":
            total = total - w * push
        else:
            pull = _distance(p, norm(ft[tap]).unsqueeze(0))[0]
            pull_log = pull_log + w * pull.detach()
            total = total + w * pull / (push + RATIO_EPS)
    logs = {"push": push_log}
    if form == "ratio":
        logs["pull"] = pull_log
    return total, logs


class EncoderFeatures(nn.Module):
    """The encoder levels 1–3 of a Restormer-family network as a feature space, its weights
    held fixed (detached) so the gradient reaches the image only."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        n: Any = self.net
        xp, _ = pad_to_multiple(x, n.size_multiple)
        e1 = n.encoder_level1(n.patch_embed(n.normalize_input(xp)))
        e2 = n.encoder_level2(n.down1_2(e1))
        e3 = n.encoder_level3(n.down2_3(e2))
        return {"encoder_level1": e1, "encoder_level2": e2, "encoder_level3": e3}

    @staticmethod
    def of(net: nn.Module) -> Callable[[Tensor], dict[str, Tensor]]:
        """``x → features`` in ``net``'s encoder with detached parameters."""
        wrapper = EncoderFeatures(net)
        frozen = {f"net.{k}": v.detach() for k, v in net.named_parameters()}
        return lambda x: functional_call(wrapper, frozen, (x,))


class ContrastivePromptLoss:
    """The ``cpr`` / ``cpr-selffeat`` term: ``J`` negatives per step, then
    :func:`contrastive_prompt_loss` in the term's feature space."""

    needs_features = False

    def __init__(
        self,
        name: str,
        features: FeatureFn,
        layers: Mapping[str, float],
        negatives: int,
        form: str,
        negatives_reduction: str,
        normalize: bool,
    ) -> None:
        self.name, self.features, self.layers = name, features, dict(layers)
        self.negatives, self.form = negatives, form
        self.negatives_reduction, self.normalize = negatives_reduction, normalize

    def __call__(self, inputs: LossInputs) -> tuple[Tensor, dict[str, Tensor]]:
        x = inputs.batch.get("input")
        if inputs.model is None or x is None:
            raise ConfigError(f"losses.{self.name}: needs the network and its input (training)")
        net = unwrap(inputs.model)
        sample = getattr(net, "forward_negatives", None)
        if sample is None:
            raise ConfigError(
                f"losses.{self.name}: {type(net).__name__} draws no mismatched-prompt "
                "negatives (train a cpl model)"
            )
        negatives = sample(x, self.negatives).to(inputs.pred.dtype)
        return contrastive_prompt_loss(
            inputs.pred,
            inputs.target,
            negatives,
            lambda img: self.features(img, net),
            self.layers,
            self.form,
            self.negatives_reduction,
            self.normalize,
        )


def _check(
    name: str,
    layers: Mapping[str, Any] | None,
    default: Mapping[str, float],
    known: Mapping[str, Any],
    negatives: Any,
    form: Any,
    negatives_reduction: Any,
) -> dict[str, float]:
    where = f"losses.{name}"
    if isinstance(negatives, bool) or not isinstance(negatives, int) or negatives < 1:
        raise ConfigError(f"{where}.negatives: expected a count ≥ 1, got {negatives!r}")
    if form not in FORMS:
        raise ConfigError(f"{where}.form: expected one of {', '.join(FORMS)}, got {form!r}")
    if negatives_reduction not in REDUCTIONS:
        raise ConfigError(f"{where}.negatives_reduction: expected 'mean' or 'sum'")
    chosen = dict(default) if layers is None else layers
    if not isinstance(chosen, Mapping) or not chosen:
        raise ConfigError(f"{where}.layers: expected {{layer: weight}}, got {layers!r}")
    out = {}
    for tap, w in chosen.items():
        if tap not in known:
            raise ConfigError(f"{where}.layers: unknown layer {tap!r} (known: {', '.join(known)})")
        if isinstance(w, bool) or not isinstance(w, (int, float)) or w < 0:
            raise ConfigError(f"{where}.layers.{tap}: expected a weight ≥ 0, got {w!r}")
        out[str(tap)] = float(w)
    return out


@register_loss("cpr")
def _cpr(
    vgg_weights: str | None = None,
    negatives: int = 4,
    layers: Mapping[str, float] | None = None,
    form: str = "subtractive",
    negatives_reduction: str = "mean",
    normalize: bool = True,
) -> LossTerm:
    """CPL's CPR in VGG-16 features (weights from ``vgg_weights``: torchvision's layout)."""
    taps = _check("cpr", layers, VGG_LAYERS, VGG16_LAYERS, negatives, form, negatives_reduction)
    if vgg_weights is None:
        raise ConfigError(
            "losses.cpr: needs VGG-16 weights (torchvision's vgg16 state dict): set "
            "losses.cpr.vgg_weights: PATH or pass --vgg-weights PATH (cpr-selffeat needs none)"
        )
    last = max(taps, key=VGG16_LAYERS.__getitem__)
    vgg: VGG16Features = load_vgg16_features(vgg_weights, last=last)

    def features(img: Tensor, net: nn.Module) -> dict[str, Tensor]:
        if vgg.mean.device != img.device:
            vgg.to(img.device)
        return vgg(img, taps)

    return ContrastivePromptLoss(
        "cpr", features, taps, negatives, form, negatives_reduction, normalize
    )


@register_loss("cpr-selffeat")
def _cpr_selffeat(
    negatives: int = 4,
    layers: Mapping[str, float] | None = None,
    form: str = "subtractive",
    negatives_reduction: str = "mean",
    normalize: bool = True,
) -> LossTerm:
    """CPR in the trained network's own (frozen-for-the-term) encoder features: weight-free."""
    taps = _check(
        "cpr-selffeat", layers, ENCODER_LAYERS, ENCODER_LAYERS, negatives, form, negatives_reduction
    )

    def features(img: Tensor, net: nn.Module) -> dict[str, Tensor]:
        return EncoderFeatures.of(net)(img)

    return ContrastivePromptLoss(
        "cpr-selffeat", features, taps, negatives, form, negatives_reduction, normalize
    )
