"""The filter bank as a wrapper around a restorer: :class:`FilterBankRestorer`.

``FilterBankRestorer(restorer, filters=K)`` adds a :class:`aioir.nn.filter_bank.FilterBankHead`
after ``restorer``'s output: a per-image choice among the output, the input and ``K`` fixed
linear filters of the input, made from the restorer's refinement features and its per-image
context map (:meth:`aioir.models.Restormer.forward_padded_with_maps`; UDAIR's degradation
map). The restorer is not changed. Fitted by :func:`aioir.engine.filter_bank.fit`
(``aioir fit-filter-bank``); the shipped default model (v3) is one.

Saved form (:mod:`aioir.models.wrappers`): ``"wrappers": [{"name": "filter_bank", "filters": K,
"taps": T, "hidden": H}]`` in ``config.json``; weights ``restorer.*`` (the network) and
``filter_bank.*`` (the head). Models saved before the wrapper existed (format 1) described the
head as constructor arguments (``overrides: {filter_bank: K, filter_taps: T}``) with its keys
beside the network's: :func:`legacy_wrapper_spec` and :func:`nest_legacy_state` translate them
on load.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from aioir.errors import ConfigError
from aioir.models.wrappers import RestorerWrapper, register_wrapper
from aioir.nn.filter_bank import FilterBankHead
from aioir.nn.padding import pad_to_multiple, unpad

__all__ = [
    "LEGACY_OVERRIDES",
    "FilterBankRestorer",
    "legacy_wrapper_spec",
    "nest_legacy_state",
    "reject_legacy_overrides",
]

#: The constructor arguments that described the head before it was a wrapper (format 1).
LEGACY_OVERRIDES: tuple[str, ...] = ("filter_bank", "filter_taps")


@register_wrapper("filter_bank")
class FilterBankRestorer(RestorerWrapper):
    """``restorer`` followed by a filter-bank head (module docstring).

    Args:
        restorer: a network with ``forward_padded_with_maps(x)`` (the image, its features and
            a context map; every :class:`~aioir.models.Restormer`) and ``feature_channels`` /
            ``context_map_channels``.
        filters: ``K``, the number of linear filters.
        taps: their side (odd).
        hidden: width of the gate MLP.
    """

    def __init__(
        self, restorer: nn.Module, filters: int = 12, taps: int = 15, hidden: int = 64
    ) -> None:
        if not hasattr(restorer, "forward_padded_with_maps"):
            raise ConfigError(
                f"a {type(restorer).__name__} cannot carry a filter bank: it has no "
                "forward_padded_with_maps (its features and context map)"
            )
        super().__init__(restorer)
        features = int(restorer.feature_channels)
        context = int(restorer.context_map_channels)
        self.filter_bank = FilterBankHead(features, context, filters, taps, hidden)

    @property
    def inference_bytes_per_pixel(self) -> int | None:
        """The network's declared activation memory per input pixel plus the head's (about four
        float32 copies of the features: 3,088 B/px measured for the default model, whose network
        declares 2,610); ``None`` when the network declares none."""
        inner = getattr(self.restorer, "inference_bytes_per_pixel", None)
        if not isinstance(inner, (int, float)) or inner <= 0:
            return None
        return int(inner) + 16 * int(self.restorer.feature_channels)

    def wrapper_options(self) -> dict[str, Any]:
        head = self.filter_bank
        return {"filters": head.num_filters, "taps": head.taps, "hidden": head.hidden}

    def forward_padded(self, x: Tensor) -> Tensor:
        """Restore an input whose sides are multiples of :attr:`size_multiple`."""
        maps = self.restorer.forward_padded_with_maps(x)
        return self.filter_bank(maps.image, x, maps.features, maps.context)

    def forward(self, x: Tensor) -> Tensor:
        """Restore ``x`` (B×C×H×W, any H, W); returns the same shape."""
        xp, size = pad_to_multiple(x, self.size_multiple)
        return unpad(self.forward_padded(xp), size)


def legacy_wrapper_spec(overrides: dict[str, Any]) -> dict[str, Any] | None:
    """Remove the format-1 head arguments from ``overrides`` (in place) and return the wrapper
    spec they meant, or ``None`` when there was no head (``filter_bank`` absent or 0)."""
    filters = int(overrides.pop("filter_bank", 0) or 0)
    taps = int(overrides.pop("filter_taps", 15))
    if filters <= 0:
        return None
    return {"name": "filter_bank", "filters": filters, "taps": taps, "hidden": 64}


def nest_legacy_state(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Format-1 weights of a model with a head (network keys at the top level beside
    ``filter_bank.*``) laid out as :class:`FilterBankRestorer`'s (``restorer.*``)."""
    return {k if k.startswith("filter_bank.") else f"restorer.{k}": v for k, v in state.items()}


def reject_legacy_overrides(overrides: Mapping[str, Any]) -> None:
    """:class:`ConfigError` when ``overrides`` hold the old head arguments."""
    legacy = [k for k in LEGACY_OVERRIDES if k in overrides]
    if legacy:
        raise ConfigError(
            f"{legacy[0]!r} is no longer a model argument: the filter bank is a wrapper — "
            "load a saved filter-bank model, fit one with `aioir fit-filter-bank`, or build "
            "aioir.models.FilterBankRestorer(model, filters=K)"
        )
