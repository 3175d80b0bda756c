"""Adapters: UDAIR's distribution adapter and a generic LoRA for 1×1 convolutions / linear layers.

* :class:`DistributionAdapter` — 1×1 ``C→2C``, GELU, depthwise 3×3, GELU, squeeze-excitation,
  1×1 ``2C→C`` (all biased). ``residual=True`` returns ``x + A(x)``; ``zero_init=True`` zeroes the
  last 1×1 so a residual adapter starts as the identity. The reference design is
  ``residual=False, zero_init=False`` (key layout ``adapt.{0,2,4.gate.{1,3},5}``).
* LoRA — :class:`LoRAConv2d` / :class:`LoRALinear` are drop-in subclasses of ``nn.Conv2d`` (1×1,
  ``groups=1``) and ``nn.Linear`` that keep the wrapped layer's ``weight``/``bias`` under the same
  keys and add ``lora_A`` (r×in) and ``lora_B`` (out×r): ``W' = W + (α/r)·B·A``. ``lora_B`` starts at
  zero, so wrapping never changes the output. A base checkpoint therefore loads into a wrapped
  model with ``strict=False`` (only ``lora_*`` keys missing), and :func:`lora_state_dict` holds just
  the adapter. :func:`inject_lora` wraps every eligible layer a predicate selects.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aioir.nn.image_statistics import image_statistic, pool_crops

__all__ = [
    "DistributionAdapter",
    "LoRAConv2d",
    "LoRALayer",
    "LoRALinear",
    "SqueezeExcitation",
    "inject_lora",
    "lora_parameters",
    "lora_state_dict",
    "mark_only_lora_trainable",
    "merge_lora",
    "set_lora_enabled",
    "unmerge_lora",
    "wrap_lora",
]


class SqueezeExcitation(nn.Module):
    """``x ⊙ sigmoid(1×1(GELU(1×1(GAP(x)))))`` with hidden width ``int(dim·shrinkage_rate)``."""

    def __init__(self, dim: int, shrinkage_rate: float = 0.25) -> None:
        super().__init__()
        hidden = int(dim * shrinkage_rate)
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(dim, hidden, 1),
            nn.GELU(),
            nn.Conv2d(hidden, dim, 1),
            nn.Sigmoid(),
        )

    #: the gate is a per-image decision (:mod:`aioir.nn.image_statistics`)
    image_statistics = True

    def forward(self, x: Tensor) -> Tensor:
        pool, rest = self.gate[0], self.gate[1:]
        return x * image_statistic(self, x.shape[0], lambda: rest(pool_crops(pool(x))))


class DistributionAdapter(nn.Module):
    """UDAIR's feature adapter ``A(C)`` (hidden width ``growth_rate·C``).

    Args:
        dim: channels ``C`` of the adapted map.
        growth_rate: hidden expansion (2.0).
        residual: return ``x + A(x)`` instead of ``A(x)``.
        zero_init: zero-initialise the last 1×1 convolution (identity at init when residual).
    """

    def __init__(
        self,
        dim: int,
        growth_rate: float = 2.0,
        residual: bool = False,
        zero_init: bool = False,
    ) -> None:
        super().__init__()
        hidden = int(dim * growth_rate)
        self.residual = residual
        self.adapt = nn.Sequential(
            nn.Conv2d(dim, hidden, 1),
            nn.GELU(),
            nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden),
            nn.GELU(),
            SqueezeExcitation(hidden),
            nn.Conv2d(hidden, dim, 1),
        )
        if zero_init:
            last = self.adapt[-1]
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)

    def forward(self, x: Tensor) -> Tensor:
        out = self.adapt(x)
        return x + out if self.residual else out


# --------------------------------------------------------------------------------------- LoRA


class LoRALayer:
    """Mixin holding the low-rank update; used by :class:`LoRAConv2d` and :class:`LoRALinear`."""

    weight: nn.Parameter
    lora_A: nn.Parameter
    lora_B: nn.Parameter

    def _init_lora(
        self, in_features: int, out_features: int, rank: int, alpha: float | None, dropout: float
    ) -> None:
        if rank < 1:
            raise ValueError(f"LoRA rank must be >= 1, got {rank}")
        w = self.weight
        self.rank = rank
        self.alpha = float(rank if alpha is None else alpha)
        self.scaling = self.alpha / rank
        self.lora_A = nn.Parameter(torch.empty(rank, in_features, device=w.device, dtype=w.dtype))
        self.lora_B = nn.Parameter(torch.zeros(out_features, rank, device=w.device, dtype=w.dtype))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.lora_dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.lora_enabled = True
        self.merged = False

    @classmethod
    def _wrap(
        cls,
        layer: nn.Module,
        in_features: int,
        out_features: int,
        rank: int,
        alpha: float | None,
        dropout: float,
    ) -> LoRALayer:
        """A LoRA layer sharing ``layer``'s weight and bias (no copy), in ``layer``'s mode."""
        new = cls(  # type: ignore[call-arg]
            in_features,
            out_features,
            layer.bias is not None,
            rank=rank,
            alpha=alpha,
            dropout=dropout,
            device="meta",
        )
        new.weight = layer.weight
        new.bias = layer.bias
        new._init_lora(in_features, out_features, rank, alpha, dropout)
        new.train(layer.training)
        return new

    def delta_weight(self) -> Tensor:
        """``(α/r)·B·A`` shaped like ``weight``."""
        return (self.lora_B @ self.lora_A).mul(self.scaling).view_as(self.weight)

    @torch.no_grad()
    def merge(self) -> None:
        """Fold the update into ``weight`` (inference speed); no-op if merged or disabled."""
        if not self.merged and self.lora_enabled:
            self.weight.add_(self.delta_weight())
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Undo :meth:`merge`."""
        if self.merged:
            self.weight.sub_(self.delta_weight())
            self.merged = False

    def set_enabled(self, enabled: bool) -> None:
        """Switch the update on or off (unmerges first when switching off a merged layer)."""
        if not enabled:
            self.unmerge()
        self.lora_enabled = enabled


class LoRAConv2d(nn.Conv2d, LoRALayer):
    """A 1×1 ``nn.Conv2d`` (``groups=1``) with a LoRA update; same ``weight``/``bias`` keys."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        bias: bool = True,
        *,
        rank: int = 4,
        alpha: float | None = None,
        dropout: float = 0.0,
        device=None,
        dtype=None,
    ) -> None:
        nn.Conv2d.__init__(
            self, in_channels, out_channels, 1, bias=bias, device=device, dtype=dtype
        )
        self._init_lora(in_channels, out_channels, rank, alpha, dropout)

    @classmethod
    def from_layer(
        cls, layer: nn.Conv2d, rank: int = 4, alpha: float | None = None, dropout: float = 0.0
    ) -> LoRAConv2d:
        """Wrap ``layer`` sharing its parameters (no copy)."""
        if not is_lora_eligible(layer) or not isinstance(layer, nn.Conv2d):
            raise TypeError(f"LoRAConv2d needs a 1×1 groups=1 Conv2d, got {layer}")
        return cls._wrap(layer, layer.in_channels, layer.out_channels, rank, alpha, dropout)

    def forward(self, x: Tensor) -> Tensor:
        out = super().forward(x)
        if self.lora_enabled and not self.merged:
            a = self.lora_A.view(self.rank, -1, 1, 1)
            b = self.lora_B.view(-1, self.rank, 1, 1)
            out = out + F.conv2d(F.conv2d(self.lora_dropout(x), a), b) * self.scaling
        return out


class LoRALinear(nn.Linear, LoRALayer):
    """An ``nn.Linear`` with a LoRA update; same ``weight``/``bias`` keys."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        rank: int = 4,
        alpha: float | None = None,
        dropout: float = 0.0,
        device=None,
        dtype=None,
    ) -> None:
        nn.Linear.__init__(self, in_features, out_features, bias=bias, device=device, dtype=dtype)
        self._init_lora(in_features, out_features, rank, alpha, dropout)

    @classmethod
    def from_layer(
        cls, layer: nn.Linear, rank: int = 4, alpha: float | None = None, dropout: float = 0.0
    ) -> LoRALinear:
        """Wrap ``layer`` sharing its parameters (no copy)."""
        if not isinstance(layer, nn.Linear):
            raise TypeError(f"LoRALinear needs an nn.Linear, got {layer}")
        return cls._wrap(layer, layer.in_features, layer.out_features, rank, alpha, dropout)

    def forward(self, x: Tensor) -> Tensor:
        out = super().forward(x)
        if self.lora_enabled and not self.merged:
            out = out + (self.lora_dropout(x) @ self.lora_A.t() @ self.lora_B.t()) * self.scaling
        return out


def is_lora_eligible(layer: nn.Module) -> bool:
    """True for an ``nn.Linear`` or a 1×1, stride-1, ``groups=1`` ``nn.Conv2d`` not yet wrapped."""
    if isinstance(layer, LoRALayer):
        return False
    if isinstance(layer, nn.Linear):
        return True
    return (
        type(layer) is nn.Conv2d
        and layer.kernel_size == (1, 1)
        and layer.stride == (1, 1)
        and layer.groups == 1
        and layer.padding in ((0, 0), 0)
    )


def wrap_lora(
    layer: nn.Module, rank: int = 4, alpha: float | None = None, dropout: float = 0.0
) -> LoRAConv2d | LoRALinear:
    """Return a LoRA version of a 1×1 ``Conv2d`` or ``Linear`` sharing its weights."""
    if not is_lora_eligible(layer):
        raise TypeError(f"LoRA wraps a 1×1 groups=1 Conv2d or a Linear, got {layer}")
    if isinstance(layer, nn.Linear):
        return LoRALinear.from_layer(layer, rank, alpha, dropout)
    return LoRAConv2d.from_layer(layer, rank, alpha, dropout)  # type: ignore[arg-type]


def inject_lora(
    module: nn.Module,
    predicate: Callable[[str, nn.Module], bool] = lambda name, layer: True,
    rank: int = 4,
    alpha: float | None = None,
    dropout: float = 0.0,
) -> list[str]:
    """Replace, in place, every eligible layer of ``module`` for which ``predicate(name, layer)``.

    Only 1×1 ``groups=1`` convolutions and linear layers are offered to the predicate. Returns
    the qualified names of the wrapped layers. ``alpha`` defaults to ``rank`` (scaling 1).
    """
    targets = [
        (name, layer)
        for name, layer in module.named_modules()
        if name and is_lora_eligible(layer) and predicate(name, layer)
    ]
    for name, layer in targets:
        parent_name, _, child = name.rpartition(".")
        parent = module.get_submodule(parent_name) if parent_name else module
        setattr(parent, child, wrap_lora(layer, rank, alpha, dropout))
    return [name for name, _ in targets]


def _lora_layers(module: nn.Module) -> Iterator[LoRALayer]:
    for m in module.modules():
        if isinstance(m, LoRALayer):
            yield m


def lora_parameters(module: nn.Module) -> Iterator[nn.Parameter]:
    """The ``lora_A`` / ``lora_B`` parameters of every LoRA layer in ``module``."""
    for m in _lora_layers(module):
        yield m.lora_A
        yield m.lora_B


def lora_state_dict(module: nn.Module) -> dict[str, Tensor]:
    """Only the LoRA entries of ``module.state_dict()`` (for per-task adapter files)."""
    return {
        k: v for k, v in module.state_dict().items() if k.rsplit(".", 1)[-1] in ("lora_A", "lora_B")
    }


def mark_only_lora_trainable(module: nn.Module) -> None:
    """``requires_grad = True`` for LoRA parameters, ``False`` for every other parameter."""
    for name, p in module.named_parameters():
        p.requires_grad_(name.rsplit(".", 1)[-1] in ("lora_A", "lora_B"))


def set_lora_enabled(module: nn.Module, enabled: bool) -> None:
    """Switch every LoRA layer in ``module`` on or off."""
    for m in _lora_layers(module):
        m.set_enabled(enabled)


def merge_lora(module: nn.Module) -> None:
    """Fold every enabled LoRA update into its base weight."""
    for m in _lora_layers(module):
        m.merge()


def unmerge_lora(module: nn.Module) -> None:
    """Undo :func:`merge_lora`."""
    for m in _lora_layers(module):
        m.unmerge()
