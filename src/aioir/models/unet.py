"""The base of the 4-level U-Nets with decoder fusion hooks (:class:`FusionUNet`).

A backbone (:class:`aioir.models.restormer.Restormer`, :class:`aioir.models.nafnet.NAFNet`)
implements :meth:`FusionUNet.unet` — the U-Net from the normalised input to the output
convolution — and calls :meth:`FusionUNet.fuse` at the three *fusion points*
(:data:`FUSION_STAGES`): after the latent blocks (``8·dim`` channels at H/8) and after decoder
levels 3 (``4·dim``, H/4) and 2 (``2·dim``, H/2). Everything around it lives here, so a method
that plugs into those points (UDAIR's degradation module) works on every backbone:

* :meth:`~FusionUNet.context` — a per-image context from the padded raw input (default ``None``);
* :meth:`~FusionUNet.fuse` — the fusion at a point (default: ``fusions[stage](x, ctx)`` when a
  module was given, else the identity);
* :meth:`~FusionUNet.normalize_input` / :meth:`~FusionUNet.residual_output` — what enters the
  U-Net and the global residual (``out + input``);
* :meth:`~FusionUNet.context_map` / :attr:`~FusionUNet.context_map_channels` — a per-image map
  for wrappers that act on the output (default: the last decoder features);
* :meth:`~FusionUNet.forward_padded` (export this one), :meth:`~FusionUNet.forward_padded_with_maps`
  and :meth:`~FusionUNet.forward`, which reflect-pads to :attr:`~FusionUNet.size_multiple` (8)
  at the bottom/right and crops back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from torch import Tensor, nn

from aioir.nn.padding import pad_to_multiple, unpad

__all__ = ["FUSION_STAGES", "FusionUNet", "OutputWithMaps", "fusion_modules"]

#: Decoder points where a fusion module may act, in forward order.
FUSION_STAGES: tuple[str, ...] = ("latent", "decoder_level3", "decoder_level2")


class OutputWithMaps(NamedTuple):
    """:meth:`FusionUNet.forward_padded_with_maps`: the restored (padded) image, the last
    decoder features (``feature_channels``, full resolution) and the per-image context map
    (``context_map_channels``)."""

    image: Tensor
    features: Tensor
    context: Tensor


def fusion_modules(fusions: Mapping[str, nn.Module] | None) -> nn.ModuleDict:
    """``fusions`` as the ``ModuleDict`` a backbone keeps; ``ValueError`` for unknown stages."""
    unknown = set(fusions or {}) - set(FUSION_STAGES)
    if unknown:
        raise ValueError(f"unknown fusion stages {sorted(unknown)}; use {FUSION_STAGES}")
    return nn.ModuleDict(dict(fusions or {}))


class FusionUNet(nn.Module):
    """A U-Net restorer with decoder fusion hooks (see the module docstring).

    Subclasses set ``dim`` and ``fusions`` (:func:`fusion_modules`) and implement :meth:`unet`
    and :attr:`feature_channels`.
    """

    size_multiple: int = 8
    dim: int
    fusions: nn.ModuleDict

    @property
    def feature_channels(self) -> int:
        """Channels of the full-resolution features :meth:`unet` returns."""
        raise NotImplementedError

    @property
    def context_map_channels(self) -> int:
        """Channels of :meth:`context_map`'s map (default: the features')."""
        return self.feature_channels

    # ------------------------------------------------------------------ hooks for subclasses
    def context(self, x: Tensor) -> Any:
        """Per-image context from the padded raw input (default: ``None``)."""
        return None

    def fuse(self, stage: str, x: Tensor, ctx: Any) -> Tensor:
        """Fusion at a decoder point (see :data:`FUSION_STAGES`); default: ``fusions[stage]``."""
        if stage in self.fusions:
            return self.fusions[stage](x, ctx)
        return x

    def context_map(self, ctx: Any, features: Tensor) -> Tensor:
        """A per-image map of what the network knows about the input, for wrappers that act
        on its output (default: the last decoder ``features``; UDAIR: its degradation map)."""
        return features

    def normalize_input(self, x: Tensor) -> Tensor:
        """Input to the U-Net (identity; UDAIR subtracts a mean)."""
        return x

    def residual_output(self, out: Tensor, x_norm: Tensor) -> Tensor:
        """Global residual: ``out + input``."""
        return out + x_norm

    # ------------------------------------------------------------------ forward
    def unet(self, x: Tensor, ctx: Any) -> tuple[Tensor, Tensor]:
        """The output convolution's result (before the global residual) and the last decoder
        features, for a normalised padded input; calls :meth:`fuse` at every fusion point."""
        raise NotImplementedError

    def forward_padded(self, x: Tensor, ctx: Any = None) -> Tensor:
        """Restore an input whose sides are multiples of :attr:`size_multiple`.

        ``ctx`` defaults to :meth:`context` of ``x``; export this method (with a padded input)
        for ONNX/tracing, since padding is decided in Python.
        """
        return self._decode(x, ctx)[0]

    def forward_padded_with_maps(self, x: Tensor, ctx: Any = None) -> OutputWithMaps:
        """:meth:`forward_padded`'s output with the last decoder features and
        :meth:`context_map` (what a wrapper acting on the output reads)."""
        out, features, ctx = self._decode(x, ctx)
        return OutputWithMaps(out, features, self.context_map(ctx, features))

    def _decode(self, x: Tensor, ctx: Any) -> tuple[Tensor, Tensor, Any]:
        """The output, the last decoder features and the context used."""
        if ctx is None:
            ctx = self.context(x)
        xn = self.normalize_input(x)
        out, features = self.unet(xn, ctx)
        return self.residual_output(out, xn), features, ctx

    def forward(self, x: Tensor) -> Tensor:
        """Restore ``x`` (B×C×H×W, any H, W); returns the same shape."""
        xp, size = pad_to_multiple(x, self.size_multiple)
        return unpad(self.forward_padded(xp), size)
