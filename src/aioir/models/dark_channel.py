"""Dark-channel-prior dehazing as a parameter-free PyTorch module (:class:`DarkChannelPrior`).

He, Sun & Tang, "Single image haze removal using dark channel prior" (CVPR 2009 / TPAMI 2011),
with the transmission refined by the guided filter (He, Sun & Tang, TPAMI 2013) — the same
algorithm and defaults as the classical comparator :func:`aioir.evaluate.classical.dehaze_dcp`
(its NumPy front end), held by a test to a plain SciPy implementation:

1. dark channel: the minimum over colour channels and a ``patch``² window (edge-replicated);
2. atmospheric light, per image: among the 0.1 % pixels with the brightest dark channel (and
   those tied with the last of them), the one of highest intensity;
3. transmission ``t = 1 − ω · dark(I / A)``, refined by a grey-guided guided filter (window
   ``2·radius + 1``, symmetric borders), floored at ``t₀``;
4. ``J = (I − A) / t + A``, clipped to [0, 1].

The classical comparator shrinks patch and radius in proportion for images with a short side
under 300 px (``scale_reference=300``); the registered model keeps the paper's windows at every
size (the same filter whatever the image or tile size, and an exported graph that is exact at
every size). Pure tensor operations (max-pooling, cumulative sums, a sort), so it runs on any
device, on a batch and in an ONNX or TorchScript export.

Why it is here: the default model's filter-bank head can offer it as a candidate (an expert,
:mod:`aioir.models.filter_bank`) and choose it per image where it dehazes better than the
network. It has no weights to train; as a model of its own (``aioir restore --model
dark-channel-prior``) it is the classical method.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from aioir.color import BT601_LUMA
from aioir.models.registry import Preset, register_presets
from aioir.nn.dark_channel import dark_channel

__all__ = ["DARK_CHANNEL_PRESETS", "DarkChannelPrior", "box_mean", "dark_channel", "guided_filter"]


def _scaled(value: int, short_side: int, reference: int = 300, minimum: int = 3) -> int:
    """A pixel parameter tuned for ≥ ``reference``-px images, shrunk for smaller ones."""
    return max(minimum, round(value * min(1.0, short_side / reference)))


def _symmetric_pad_last(x: Tensor, before: int, after: int) -> Tensor:
    """Pad the last dimension, mirrored with the edge sample repeated (SciPy's "reflect"), by
    any amount (beyond the length it mirrors the mirrored copy); indices computed from the
    tensor's size, so an exported graph pads right at every size."""
    n = x.shape[-1]
    index = torch.arange(-before, n + after, device=x.device) % (2 * n)
    index = torch.where(index < n, index, 2 * n - 1 - index)
    return x.index_select(-1, index)


def _box_mean_last(x: Tensor, radius: int) -> Tensor:
    """Mean over ``2·radius + 1`` samples of the last dimension, symmetric borders."""
    width = 2 * radius + 1
    # inclusive sums over [r + 1 mirrored, x, r mirrored]: the window [i − r, i + r] of x is
    # sums[i + 2r + 1] − sums[i]; slicing from the ends keeps any length (exported graphs)
    sums = _symmetric_pad_last(x, radius + 1, radius).cumsum(-1)
    return (sums[..., width:] - sums[..., :-width]) / width


def box_mean(x: Tensor, radius: int) -> Tensor:
    """Mean over a ``(2·radius + 1)²`` window with symmetric borders (B×C×H×W), by cumulative
    sums in float64: O(1) per pixel whatever the radius."""
    out = _box_mean_last(x.double(), radius)
    out = _box_mean_last(out.transpose(-1, -2), radius).transpose(-1, -2)
    return out.to(x.dtype)


def guided_filter(guide: Tensor, source: Tensor, radius: int, eps: float) -> Tensor:
    """Grey-guided guided filter (He et al., TPAMI 2013, Algorithm 1); B×1×H×W tensors."""
    mean_i, mean_p = box_mean(guide, radius), box_mean(source, radius)
    cov_ip = box_mean(guide * source, radius) - mean_i * mean_p
    var_i = box_mean(guide * guide, radius) - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return box_mean(a, radius) * guide + box_mean(b, radius)


class DarkChannelPrior(nn.Module):
    """Dark-channel-prior dehazing with guided-filter transmission (no trainable weights).

    Args:
        patch: dark-channel window side.
        omega: the haze kept for depth perception is ``1 − omega``.
        t0: the transmission floor.
        radius: guided-filter radius.
        eps: guided-filter regulariser.
        brightest: the fraction of pixels, brightest in the dark channel, the atmospheric
            light is chosen from.
        scale_reference: shrink ``patch`` and ``radius`` in proportion for images whose short
            side is under this many pixels (300: the classical comparator's convention);
            ``None`` keeps them fixed — the same filter at every size, and an exported graph
            that is exact at every size (scaled windows are those of the tracing size there).
    """

    size_multiple: int = 1

    def __init__(
        self,
        patch: int = 15,
        omega: float = 0.95,
        t0: float = 0.1,
        radius: int = 60,
        eps: float = 1e-3,
        brightest: float = 1e-3,
        scale_reference: int | None = None,
    ) -> None:
        super().__init__()
        if patch < 1 or radius < 1:
            raise ValueError(f"patch and radius must be positive, got {patch} and {radius}")
        if not 0.0 < omega <= 1.0 or not 0.0 < t0 < 1.0 or not 0.0 < brightest <= 1.0:
            raise ValueError("omega must lie in (0, 1], t0 and brightest in (0, 1)")
        self.patch, self.omega, self.t0 = patch, omega, t0
        self.radius, self.eps, self.brightest = radius, eps, brightest
        self.scale_reference = scale_reference
        self.register_buffer("luma", torch.tensor(BT601_LUMA).view(1, 3, 1, 1), persistent=False)

    def windows(self, height: int, width: int) -> tuple[int, int]:
        """``(patch, radius)`` for an image of this size."""
        if self.scale_reference is None:
            return self.patch, self.radius
        short = min(height, width)
        return (
            _scaled(self.patch, short, self.scale_reference),
            _scaled(self.radius, short, self.scale_reference),
        )

    def airlight(self, images: Tensor, dark: Tensor) -> Tensor:
        """Per image, the pixel of highest intensity among the brightest ``brightest`` of the
        dark channel (``round(brightest · H·W)`` pixels, at least one): B×C×1×1.

        Every pixel tied with the last of them counts too (the window minimum makes plateaus
        of equal dark-channel values; an arbitrary pick among them would make the light depend
        on memory order). The count is taken from the tensors, not from Python numbers, so an
        exported graph counts at every size."""
        flat = dark.flatten(1)  # B×HW
        count = torch.ones_like(flat).sum(dim=1, keepdim=True)  # HW, as a tensor
        n = (count * self.brightest).round().clamp(min=1).long()
        ranked = flat.sort(dim=1, descending=True).values
        threshold = ranked.gather(1, n - 1)  # the n-th brightest dark-channel value
        intensity = images.sum(dim=1).flatten(1)
        candidates = intensity.masked_fill(flat < threshold, -1.0)
        best = candidates.argmax(dim=1)  # B
        pixels = images.flatten(2)  # B×C×HW
        light = pixels.gather(2, best.view(-1, 1, 1).expand(-1, pixels.shape[1], 1))
        return light.unsqueeze(-1).clamp(min=1e-3)

    def forward(self, x: Tensor) -> Tensor:
        """Dehaze ``x`` (B×3×H×W in [0, 1], any size); returns the same shape."""
        images = x.clamp(0.0, 1.0)
        patch, radius = self.windows(int(images.shape[-2]), int(images.shape[-1]))
        light = self.airlight(images, dark_channel(images, patch))
        transmission = 1.0 - self.omega * dark_channel(images / light, patch)
        grey = (images * self.luma.to(images)).sum(dim=1, keepdim=True)
        transmission = guided_filter(grey, transmission, radius, self.eps)
        t = transmission.clamp(min=self.t0)
        return ((images - light) / t + light).clamp(0.0, 1.0)


DARK_CHANNEL_PRESETS: dict[str, Preset] = {
    "paper": Preset(
        {},
        parameters=0,
        description="dark channel prior + guided filter (He et al. 2009/2013; classical, no "
        "weights; a candidate of the default model's filter-bank head)",
        inference_bytes_per_pixel=137,  # restore_large.py --bytes-per-pixel --threads 1
    ),
    "mild": Preset(
        {"omega": 0.5},
        parameters=0,
        description="dark channel prior removing about half the haze (ω 0.5: transmission ≥ "
        "0.5, so contrast is stretched at most 2×); a cautious candidate for photos that may "
        "be pale rather than hazy",
        inference_bytes_per_pixel=137,
    ),
}

register_presets("dark-channel-prior", DarkChannelPrior, DARK_CHANNEL_PRESETS)
