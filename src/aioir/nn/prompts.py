"""Prompt blocks (PromptIR) with a pluggable weighting strategy (dense softmax or sparse top-k).

:class:`PromptGenBlock` (PGM): a learnable bank ``E ∈ R^{N×C_p×S×S}`` (initialised U(0,1)), a
router ``Linear_{C→N}(GAP(F))`` and a bias-free 3×3 convolution::

    w = router(softmax(logits)),  P = conv3x3(bilinear_resize(Σ_i w_i E_i, H×W))

The *router* is a parameter-free strategy object mapping logits to weights, so a sparse variant
(top-k, :class:`TopKRouter`) keeps the dense block's parameters and key layout
(``prompt_param``, ``linear_layer``, ``conv3x3``). Routers are named in a small registry
(:data:`ROUTERS`: ``softmax``, ``topk``) so a config or a saved model's ``config.json`` can choose
one: :func:`build_router` takes ``"topk"`` or ``{"name": "topk", "k": 1}``. A sparse router
declares how many weights it keeps (:attr:`PromptRouter.active`); the block then gathers those
bank entries instead of summing all ``N`` (the same prompt, less work). Subclasses may also
override :meth:`PromptGenBlock.route` or pass explicit ``weights`` to
:meth:`PromptGenBlock.forward` (e.g. mismatched prompts for a contrastive loss). The routed weights are a per-image decision
(:mod:`aioir.nn.image_statistics`): the tiles of a tiled restoration share the whole image's (the
prompt is still resized to each tile's size).

:class:`PromptInteraction` (PIM): ``1×1(TB([F ‖ P]))`` — the fusion used after the prompt block.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aioir.errors import ConfigError
from aioir.nn.blocks import TransformerBlock
from aioir.nn.image_statistics import image_statistic, pool_crops

__all__ = [
    "ROUTERS",
    "PromptGenBlock",
    "PromptInteraction",
    "PromptRouter",
    "RouterSpec",
    "SoftmaxRouter",
    "TopKRouter",
    "build_router",
    "router_factory",
    "router_spec",
]


class PromptRouter(nn.Module):
    """Strategy: router logits ``B×N`` → non-negative prompt weights ``B×N``."""

    #: registry name (:data:`ROUTERS`)
    name: str = ""
    #: how many weights per row may be non-zero (``None``: all ``N``, a dense sum)
    active: int | None = None

    def options(self) -> dict[str, Any]:
        """Constructor arguments that rebuild this router (:func:`router_spec`)."""
        return {}

    def forward(self, logits: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class SoftmaxRouter(PromptRouter):
    """Dense softmax weights over all ``N`` prompt components (PromptIR)."""

    name = "softmax"

    def forward(self, logits: Tensor) -> Tensor:
        return logits.softmax(dim=-1)


class TopKRouter(PromptRouter):
    """Sparse prompts: softmax over all ``N``, then keep the ``k`` largest weights as they are
    (not renormalised; the others are 0)."""

    name = "topk"

    def __init__(self, k: int = 1) -> None:
        super().__init__()
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be an integer >= 1, got {k!r}")
        self.k = k
        self.active = k

    def options(self) -> dict[str, Any]:
        return {"k": self.k}

    def forward(self, logits: Tensor) -> Tensor:
        probs = logits.softmax(dim=-1)
        top, idx = probs.topk(self.k, dim=-1)
        return torch.zeros_like(probs).scatter(-1, idx, top)


#: Router name → class (a router's constructor takes only keyword options).
ROUTERS: dict[str, type[PromptRouter]] = {"softmax": SoftmaxRouter, "topk": TopKRouter}

#: A router named in a config: ``"topk"`` or ``{"name": "topk", "k": 1}``.
RouterSpec = str | Mapping[str, Any]


def build_router(spec: RouterSpec) -> PromptRouter:
    """The router a config names (:data:`RouterSpec`); :class:`ConfigError` when the name or an
    option is unknown or invalid."""
    if isinstance(spec, str):
        name, options = spec, {}
    elif isinstance(spec, Mapping) and isinstance(spec.get("name"), str):
        options = {str(k): v for k, v in spec.items() if k != "name"}
        name = spec["name"]
    else:
        raise ConfigError(f"router: expected a name or {{name: ..., options}}, got {spec!r}")
    cls = ROUTERS.get(name)
    if cls is None:
        raise ConfigError(f"router: unknown name {name!r} (known: {', '.join(sorted(ROUTERS))})")
    try:
        return cls(**options)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"router {name!r}: invalid options {options} ({exc})") from None


def router_spec(router: PromptRouter) -> dict[str, Any]:
    """The config mapping that rebuilds ``router`` with :func:`build_router`."""
    return {"name": router.name, **router.options()}


def router_factory(
    router: RouterSpec | Callable[[], PromptRouter] | None,
) -> Callable[[], PromptRouter] | None:
    """A factory of fresh routers (one per block) from a spec, a factory or ``None``."""
    if router is None or callable(router):
        return router
    build_router(router)  # fail once, early, on a bad spec
    return lambda: build_router(router)


class PromptGenBlock(nn.Module):
    """Prompt generation block (PGM) producing a ``C_p×H×W`` prompt for a ``C×H×W`` feature.

    Args:
        prompt_dim: prompt channels ``C_p``.
        prompt_len: bank size ``N``.
        prompt_size: bank spatial size ``S``.
        lin_dim: channels ``C`` of the routed feature.
        router: weighting strategy (default :class:`SoftmaxRouter`).
    """

    #: the routed weights are a per-image decision (:mod:`aioir.nn.image_statistics`)
    image_statistics = True

    def __init__(
        self,
        prompt_dim: int = 128,
        prompt_len: int = 5,
        prompt_size: int = 96,
        lin_dim: int = 192,
        router: PromptRouter | None = None,
    ) -> None:
        super().__init__()
        # leading singleton axis kept for checkpoint compatibility with the reference code
        self.prompt_param = nn.Parameter(
            torch.rand(1, prompt_len, prompt_dim, prompt_size, prompt_size)
        )
        self.linear_layer = nn.Linear(lin_dim, prompt_len)
        self.conv3x3 = nn.Conv2d(prompt_dim, prompt_dim, kernel_size=3, padding=1, bias=False)
        self.router = router if router is not None else SoftmaxRouter()

    def logits(self, x: Tensor) -> Tensor:
        """Router logits ``B×N`` from the globally pooled feature."""
        return self.linear_layer(pool_crops(x.mean(dim=(-2, -1))))

    def route(self, x: Tensor) -> Tensor:
        """Prompt weights ``B×N`` for feature ``x``."""
        return self.router(self.logits(x))

    def compose(self, weights: Tensor, size: tuple[int, int], active: int | None = None) -> Tensor:
        """``conv3x3(resize(Σ_i w_i E_i, size))`` for weights ``B×N``.

        ``active``: at most that many weights per row are non-zero; the sum then gathers the
        ``active`` largest-weighted entries instead of running over all ``N`` (same result).
        """
        bank = self.prompt_param[0]  # N×C_p×S×S
        n, c, s1, s2 = bank.shape
        flat = bank.reshape(n, -1)
        w = weights.to(bank.dtype)
        if active is not None and active < n:
            values, index = w.topk(active, dim=-1)  # B×k
            mixed = (values.unsqueeze(1) @ flat[index]).view(-1, c, s1, s2)
        else:
            mixed = (w @ flat).view(-1, c, s1, s2)
        mixed = F.interpolate(mixed, size, mode="bilinear", align_corners=False)
        return self.conv3x3(mixed)

    def forward(self, x: Tensor, weights: Tensor | None = None) -> Tensor:
        """The prompt for ``x``: routed (sparse routers gather their entries) or from explicit
        ``weights`` (``B×N``, summed densely)."""
        size = (x.shape[-2], x.shape[-1])
        if weights is None:
            weights = image_statistic(self, x.shape[0], lambda: self.route(x))
            return self.compose(weights, size, self.router.active)
        return self.compose(weights, size)


class PromptInteraction(nn.Module):
    """Prompt interaction (PIM): ``reduce(block([x ‖ prompt]))``, TB on ``C + C_p`` channels."""

    def __init__(
        self,
        dim: int,
        prompt_dim: int,
        out_dim: int,
        num_heads: int = 4,
        ffn_expansion_factor: float = 2.66,
        bias: bool = False,
        layernorm_type: str = "WithBias",
    ) -> None:
        super().__init__()
        self.block = TransformerBlock(
            dim + prompt_dim, num_heads, ffn_expansion_factor, bias, layernorm_type
        )
        self.reduce = nn.Conv2d(dim + prompt_dim, out_dim, kernel_size=1, bias=bias)

    def forward(self, x: Tensor, prompt: Tensor) -> Tensor:
        return self.reduce(self.block(torch.cat([x, prompt], dim=1)))
