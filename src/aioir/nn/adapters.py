"""Adapters: UDAIR's distribution adapter and a multi-adapter LoRA for 1×1 convolutions.

* :class:`DistributionAdapter` — 1×1 ``C→2C``, GELU, depthwise 3×3, GELU, squeeze-excitation,
  1×1 ``2C→C`` (all biased). ``residual=True`` returns ``x + A(x)``; ``zero_init=True`` zeroes the
  last 1×1 so a residual adapter starts as the identity. The reference design is
  ``residual=False, zero_init=False`` (key layout ``adapt.{0,2,4.gate.{1,3},5}``).
* Multi-adapter LoRA — :class:`MultiLoRAConv2d` is a drop-in subclass of a 1×1 ``nn.Conv2d``
  (``groups=1``) that keeps the wrapped layer's ``weight``/``bias`` keys and holds ``K`` rank-``r``
  adapters side by side: ``lora_A.k`` (r×in) and ``lora_B.k`` (out×r), so adapter ``k`` is
  ``ΔW_k = (α/r)·B_k·A_k``. The layer computes ``W x + Σ_k w_bk ΔW_k x`` with per-sample adapter
  weights ``w`` (B×K) set on the model before the forward (:func:`set_adapter_weights`): one
  batch may mix samples of different adapters and a soft blend costs one forward. Without
  weights (``None``, the default) the layer is the plain convolution. ``lora_B`` starts at
  zero, so a new adapter never changes the output; :func:`add_lora_adapter` appends one to every
  layer without touching the others (a base checkpoint loads with only ``lora_*`` keys missing).
  :func:`merge_lora` folds one fixed blend (e.g. one adapter) into the weights for deployment;
  the merged forward equals the unmerged one with that blend, and :func:`unmerge_lora` undoes it.
  :func:`inject_lora` wraps every eligible layer a predicate selects.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aioir.nn.image_statistics import image_statistic, pool_crops

__all__ = [
    "DistributionAdapter",
    "MultiLoRAConv2d",
    "SqueezeExcitation",
    "add_lora_adapter",
    "inject_lora",
    "is_lora_eligible",
    "lora_adapter_count",
    "lora_layers",
    "lora_parameters",
    "lora_state_dict",
    "mark_only_lora_trainable",
    "merge_lora",
    "set_adapter_weights",
    "unmerge_lora",
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


class MultiLoRAConv2d(nn.Conv2d):
    """A 1×1 ``nn.Conv2d`` (``groups=1``) with ``K`` LoRA adapters blended per sample.

    Args:
        in_channels, out_channels, bias: as ``nn.Conv2d`` (kernel 1).
        rank: ``r`` of every adapter.
        alpha: LoRA ``α`` (default ``r``: scaling 1).
        num_adapters: adapters to create now (more with :meth:`add_adapter`).

    Attributes:
        adapter_weights: ``None`` (the plain convolution) or a ``B×K`` tensor of per-sample
            adapter weights for the next forwards (:func:`set_adapter_weights`).
        merged: ``None`` or the ``K`` weights folded into ``weight`` (:meth:`merge`); while
            merged the adapters are not applied again.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        bias: bool = True,
        *,
        rank: int = 4,
        alpha: float | None = None,
        num_adapters: int = 0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(in_channels, out_channels, 1, bias=bias, device=device, dtype=dtype)
        self._init_lora(rank, alpha, num_adapters)

    def _init_lora(self, rank: int, alpha: float | None, num_adapters: int) -> None:
        if rank < 1:
            raise ValueError(f"LoRA rank must be >= 1, got {rank}")
        self.rank = int(rank)
        self.alpha = float(rank if alpha is None else alpha)
        self.scaling = self.alpha / self.rank
        self.lora_A = nn.ParameterList()
        self.lora_B = nn.ParameterList()
        self.adapter_weights: Tensor | None = None
        self.merged: Tensor | None = None
        for _ in range(num_adapters):
            self.add_adapter()

    @classmethod
    def from_layer(
        cls, layer: nn.Conv2d, rank: int = 4, alpha: float | None = None, num_adapters: int = 0
    ) -> MultiLoRAConv2d:
        """Wrap ``layer`` sharing its weight and bias (no copy), in ``layer``'s mode."""
        if not is_lora_eligible(layer):
            raise TypeError(f"MultiLoRAConv2d wraps a 1×1 stride-1 groups=1 Conv2d, got {layer}")
        new = cls(
            layer.in_channels, layer.out_channels, layer.bias is not None, rank=rank,
            alpha=alpha, device="meta",
        )  # fmt: skip
        new.weight = layer.weight
        new.bias = layer.bias
        new._init_lora(rank, alpha, num_adapters)
        new.train(layer.training)
        return new

    @property
    def num_adapters(self) -> int:
        """``K``, the adapters held."""
        return len(self.lora_A)

    def add_adapter(self) -> int:
        """Append one adapter (``A`` Kaiming-uniform, ``B = 0``); returns its index."""
        if self.merged is not None:
            raise RuntimeError("unmerge the adapters before adding one")
        w = self.weight
        a = torch.empty(self.rank, self.in_channels, device=w.device, dtype=w.dtype)
        nn.init.kaiming_uniform_(a, a=math.sqrt(5))
        self.lora_A.append(nn.Parameter(a))
        self.lora_B.append(
            nn.Parameter(torch.zeros(self.out_channels, self.rank, device=w.device, dtype=w.dtype))
        )
        return self.num_adapters - 1

    def delta_weight(self, weights: Tensor | Sequence[float]) -> Tensor:
        """``Σ_k weights[k]·ΔW_k`` shaped like ``weight``."""
        w = torch.as_tensor(weights, dtype=self.weight.dtype, device=self.weight.device)
        if w.shape != (self.num_adapters,):
            raise ValueError(f"expected {self.num_adapters} adapter weights, got {tuple(w.shape)}")
        delta = torch.zeros(
            self.out_channels, self.in_channels, dtype=self.weight.dtype, device=w.device
        )
        for k in range(self.num_adapters):
            if float(w[k]) != 0.0:
                delta = delta + w[k] * (self.lora_B[k] @ self.lora_A[k])
        return (delta * self.scaling).view_as(self.weight)

    @torch.no_grad()
    def merge(self, weights: Tensor | Sequence[float]) -> None:
        """Fold the blend ``weights`` (``K``) into ``weight``; an earlier merge is undone first."""
        self.unmerge()
        w = torch.as_tensor(weights, dtype=torch.float32).detach().cpu().clone()
        self.weight.add_(self.delta_weight(w))
        self.merged = w

    @torch.no_grad()
    def unmerge(self) -> None:
        """Undo :meth:`merge` (no-op when nothing is merged)."""
        if self.merged is not None:
            self.weight.sub_(self.delta_weight(self.merged))
            self.merged = None

    def forward(self, x: Tensor) -> Tensor:
        out = super().forward(x)
        w = self.adapter_weights
        if w is None or self.merged is not None or not self.num_adapters:
            return out
        if w.ndim != 2 or w.shape[1] != self.num_adapters or w.shape[0] not in (1, x.shape[0]):
            raise ValueError(
                f"adapter weights must be B×{self.num_adapters} (B = {x.shape[0]}), "
                f"got {tuple(w.shape)}"
            )
        w = w.to(device=x.device, dtype=x.dtype)
        active = [k for k in range(self.num_adapters) if bool((w[:, k] != 0).any())]
        if not active:
            return out
        a = torch.cat([self.lora_A[k] for k in active]).to(x.dtype)  # (n·r)×in
        b = torch.cat([self.lora_B[k] for k in active], dim=1).to(x.dtype)  # out×(n·r)
        h = F.conv2d(x, a[:, :, None, None])
        scale = (w[:, active] * self.scaling).repeat_interleave(self.rank, dim=1)
        h = h * scale[:, :, None, None]
        return out + F.conv2d(h, b[:, :, None, None])


def is_lora_eligible(layer: nn.Module) -> bool:
    """True for a plain 1×1, stride-1, unpadded, ``groups=1`` ``nn.Conv2d`` not yet wrapped."""
    return (
        type(layer) is nn.Conv2d
        and layer.kernel_size == (1, 1)
        and layer.stride == (1, 1)
        and layer.groups == 1
        and layer.padding in ((0, 0), 0)
    )


def inject_lora(
    module: nn.Module,
    predicate: Callable[[str, nn.Module], bool] = lambda name, layer: True,
    rank: int = 4,
    alpha: float | None = None,
    num_adapters: int = 0,
) -> list[str]:
    """Replace, in place, every eligible layer of ``module`` for which ``predicate(name, layer)``
    by a :class:`MultiLoRAConv2d` sharing its weights, with ``num_adapters`` adapters.

    Only plain 1×1 ``groups=1`` convolutions are offered to the predicate. Returns the qualified
    names of the wrapped layers. ``alpha`` defaults to ``rank`` (scaling 1).
    """
    targets = [
        (name, layer)
        for name, layer in module.named_modules()
        if name and is_lora_eligible(layer) and predicate(name, layer)
    ]
    for name, layer in targets:
        parent_name, _, child = name.rpartition(".")
        parent = module.get_submodule(parent_name) if parent_name else module
        setattr(parent, child, MultiLoRAConv2d.from_layer(layer, rank, alpha, num_adapters))
    return [name for name, _ in targets]


def lora_layers(module: nn.Module) -> Iterator[MultiLoRAConv2d]:
    """Every :class:`MultiLoRAConv2d` in ``module``."""
    for m in module.modules():
        if isinstance(m, MultiLoRAConv2d):
            yield m


def lora_adapter_count(module: nn.Module) -> int:
    """``K`` of the LoRA layers in ``module`` (0 without any; ValueError if they disagree)."""
    counts = {m.num_adapters for m in lora_layers(module)}
    if len(counts) > 1:
        raise ValueError(f"LoRA layers hold different adapter counts: {sorted(counts)}")
    return counts.pop() if counts else 0


def add_lora_adapter(module: nn.Module) -> int:
    """Append one adapter to every LoRA layer of ``module`` (the others stay as they are);
    returns its index."""
    index = lora_adapter_count(module)
    for m in lora_layers(module):
        m.add_adapter()
    return index


def set_adapter_weights(module: nn.Module, weights: Tensor | None) -> None:
    """Per-sample adapter weights (``B×K``, or ``1×K`` for the whole batch) for the next
    forwards of every LoRA layer in ``module``; ``None`` switches the adapters off."""
    for m in lora_layers(module):
        m.adapter_weights = weights


def _selected(adapters: Iterable[int] | None, count: int) -> set[int]:
    chosen = set(range(count)) if adapters is None else {int(k) for k in adapters}
    bad = sorted(k for k in chosen if not 0 <= k < count)
    if bad:
        raise ValueError(f"no adapter {bad[0]} (the layers hold {count})")
    return chosen


def lora_parameters(
    module: nn.Module, adapters: Iterable[int] | None = None
) -> Iterator[nn.Parameter]:
    """The ``lora_A`` / ``lora_B`` parameters of ``adapters`` (default all) in ``module``."""
    chosen = _selected(adapters, lora_adapter_count(module))
    for m in lora_layers(module):
        for k in sorted(chosen):
            yield m.lora_A[k]
            yield m.lora_B[k]


def _lora_key(name: str) -> tuple[str, int] | None:
    parts = name.rsplit(".", 2)
    if len(parts) == 3 and parts[1] in ("lora_A", "lora_B") and parts[2].isdigit():
        return parts[1], int(parts[2])
    return None


def lora_state_dict(module: nn.Module, adapters: Iterable[int] | None = None) -> dict[str, Tensor]:
    """Only the LoRA entries of ``module.state_dict()`` (of ``adapters``, default all)."""
    chosen = _selected(adapters, lora_adapter_count(module))
    out = {}
    for key, value in module.state_dict().items():
        found = _lora_key(key)
        if found is not None and found[1] in chosen:
            out[key] = value
    return out


def mark_only_lora_trainable(module: nn.Module, adapters: Iterable[int] | None = None) -> None:
    """``requires_grad = True`` for the LoRA parameters of ``adapters`` (default all),
    ``False`` for every other parameter of ``module``."""
    chosen = _selected(adapters, lora_adapter_count(module))
    for name, p in module.named_parameters():
        found = _lora_key(name)
        p.requires_grad_(found is not None and found[1] in chosen)


def merge_lora(module: nn.Module, weights: Tensor | Sequence[float]) -> None:
    """Fold the adapter blend ``weights`` (``K``; one-hot = one adapter) into every LoRA
    layer's weight (deployment: no adapter computation afterwards)."""
    for m in lora_layers(module):
        m.merge(weights)


def unmerge_lora(module: nn.Module) -> None:
    """Undo :func:`merge_lora`."""
    for m in lora_layers(module):
        m.unmerge()
