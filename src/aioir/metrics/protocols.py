"""Named metric protocols: every reported number carries the convention that produced it.

A :class:`MetricProtocol` fixes what moves PSNR/SSIM (``docs/protocols.md``, "Metric conventions"):
colour space, SSIM window, border/centre cropping, clipping, 8-bit rounding. Images are float
in [0, 1] (``data_range = 1``); numpy ``H×W×C`` or torch ``N×C×H×W``. Every protocol averages
*per-image* values (the caller takes the mean over images, then over data sets).

Built-in protocols (:data:`PROTOCOLS`):

``promptir``
    AirNet / PromptIR / AdaIR / DFPIR (``compute_psnr_ssim``): RGB, prediction and target clipped
    to [0, 1], both centre-cropped to a multiple of 16 (PromptIR's ``crop_img``: the
    ``H mod 16`` surplus rows are dropped, ``floor(surplus / 2)`` from the top), scikit-image
    PSNR and *default* SSIM (7×7 uniform window, sample covariance, mean over channels).
``basicsr-y``
    BasicSR / Restormer / CPL Y-channel evaluation (``test_y_channel=True``): BT.601 luma
    (MATLAB ``rgb2ycbcr``), Gaussian 11×11 SSIM (σ 1.5, population covariance), ``crop_border
    = 0`` (BasicSR uses the SR scale there; restoration configs use 0). Clipped and rounded to
    8 bit first, as BasicSR's ``tensor2img`` does before its metrics.
``udair``
    UDAIR's validation metric, but per image: RGB, prediction clipped, no crop, scikit-image
    PSNR and default 7×7 SSIM. (UDAIR pools the PSNR's MSE over each task sub-batch and resizes
    to 256×256 — the resize is a data-loading choice, not part of this protocol.)
``clean``
    Our own default: RGB, clipped, full image, Gaussian 11×11 SSIM (Wang et al. 2004).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Literal, TypeVar, overload

import numpy as np
import torch

from aioir.errors import ConfigError
from aioir.metrics._common import working_dtype
from aioir.metrics.psnr import psnr
from aioir.metrics.ssim import SSIM_WINDOWS, ssim

__all__ = ["PROTOCOLS", "MetricProtocol", "get_protocol"]

_Img = TypeVar("_Img", np.ndarray, torch.Tensor)

_WINDOW_TEXT = {
    "uniform": "7×7 uniform, sample cov.",
    "gaussian": "11×11 Gaussian σ 1.5, population cov.",
}


def _spatial_axes(x: np.ndarray | torch.Tensor) -> tuple[int, int]:
    """(height axis, width axis): numpy is H×W[×C], torch is [N×]C×H×W."""
    if isinstance(x, torch.Tensor):
        if x.ndim not in (3, 4):
            raise ValueError(f"expected a C×H×W or N×C×H×W tensor, got shape {tuple(x.shape)}")
        return x.ndim - 2, x.ndim - 1
    if isinstance(x, np.ndarray):
        if x.ndim not in (2, 3):
            raise ValueError(f"expected an H×W or H×W×C array, got shape {x.shape}")
        return 0, 1
    raise TypeError(f"expected a numpy array or torch tensor, got {type(x).__name__}")


def center_crop_to_multiple(img: _Img, multiple: int) -> _Img:
    """Crop height and width down to a multiple of ``multiple``, centred as PromptIR does.

    The surplus ``s = H mod multiple`` is removed as ``s // 2`` rows at the top and the rest at
    the bottom (likewise for width).
    """
    ax_h, ax_w = _spatial_axes(img)
    h, w = img.shape[ax_h], img.shape[ax_w]
    hh, ww = h - h % multiple, w - w % multiple
    if hh == 0 or ww == 0:
        raise ValueError(f"image of size {h}×{w} is smaller than the crop multiple {multiple}")
    top, left = (h % multiple) // 2, (w % multiple) // 2
    index: list[slice] = [slice(None)] * img.ndim
    index[ax_h] = slice(top, top + hh)
    index[ax_w] = slice(left, left + ww)
    return img[tuple(index)]


@dataclasses.dataclass(frozen=True)
class MetricProtocol:
    """One metric convention for [0, 1] images.

    Attributes:
        name: registry key, printed with every table.
        description: one sentence on where the convention comes from.
        y_channel: score BT.601 luma instead of RGB.
        crop_border: pixels removed from each side before scoring.
        ssim_window: ``"gaussian"`` (11×11) or ``"uniform"`` (7×7), see :func:`aioir.metrics.ssim`.
        crop_to_multiple: centre-crop height/width to this multiple first (``None``: no crop).
        clip: clip prediction and target to [0, 1] first.
        quantize_8bit: round prediction and target to 8-bit levels (``round(255 x) / 255``) after
            clipping, as pipelines that score saved PNGs or BasicSR's ``tensor2img`` do.
    """

    name: str
    description: str
    y_channel: bool
    crop_border: int
    ssim_window: Literal["gaussian", "uniform"]
    crop_to_multiple: int | None
    clip: bool = True
    quantize_8bit: bool = False

    def __post_init__(self) -> None:
        if self.ssim_window not in SSIM_WINDOWS:
            raise ConfigError(
                f"protocol {self.name!r}: ssim_window must be one of {sorted(SSIM_WINDOWS)}, "
                f"got {self.ssim_window!r}"
            )
        if not isinstance(self.crop_border, int) or self.crop_border < 0:
            raise ConfigError(
                f"protocol {self.name!r}: crop_border must be an int >= 0, got {self.crop_border!r}"
            )
        if self.crop_to_multiple is not None and (
            not isinstance(self.crop_to_multiple, int) or self.crop_to_multiple < 1
        ):
            raise ConfigError(
                f"protocol {self.name!r}: crop_to_multiple must be None or an int >= 1, "
                f"got {self.crop_to_multiple!r}"
            )
        if self.quantize_8bit and not self.clip:
            raise ConfigError(f"protocol {self.name!r}: quantize_8bit requires clip=True")

    def prepare(self, pred: _Img, target: _Img) -> tuple[_Img, _Img]:
        """Apply clipping, 8-bit rounding and the centre crop; return new (pred, target).

        Accepts float numpy ``H×W[×C]`` arrays or torch ``[N×]C×H×W`` tensors in [0, 1] (both of
        one kind, same shape); the inputs are not modified. With ``quantize_8bit`` the results
        are float64 (float32 on MPS); otherwise they keep the input dtype.
        """
        if type(pred) is not type(target) or not isinstance(pred, np.ndarray | torch.Tensor):
            raise TypeError(
                f"{self.name}: pred and target must both be numpy arrays or both torch tensors, "
                f"got {type(pred).__name__} and {type(target).__name__}"
            )
        if tuple(pred.shape) != tuple(target.shape):
            raise ValueError(
                f"{self.name}: pred and target shapes differ: "
                f"{tuple(pred.shape)} vs {tuple(target.shape)}"
            )
        _spatial_axes(pred)
        for img in (pred, target):
            is_float = (
                img.is_floating_point()
                if isinstance(img, torch.Tensor)
                else np.issubdtype(img.dtype, np.floating)
            )
            if not is_float:
                raise TypeError(
                    f"{self.name}: protocols take float images in [0, 1], got dtype {img.dtype}"
                )
        out = []
        for img in (pred, target):
            if self.clip:
                img = img.clip(0.0, 1.0)
            if self.quantize_8bit:
                # exact 8-bit levels need float64: in float32, k / 255 is off by an ulp and
                # the device-dependent rounding would show in the 7th digit of PSNR
                if isinstance(img, torch.Tensor):
                    img = img.to(working_dtype(img.device))
                else:
                    img = img.astype(np.float64)
                img = (img * 255.0).round() / 255.0
            if self.crop_to_multiple is not None and self.crop_to_multiple > 1:
                img = center_crop_to_multiple(img, self.crop_to_multiple)
            out.append(img)
        return out[0], out[1]

    @overload
    def score(self, pred: np.ndarray, target: np.ndarray) -> dict[str, float]: ...
    @overload
    def score(self, pred: torch.Tensor, target: torch.Tensor) -> dict[str, list[float]]: ...
    def score(
        self, pred: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor
    ) -> dict[str, float] | dict[str, list[float]]:
        """PSNR and SSIM under this protocol.

        numpy ``H×W[×C]`` image → ``{"psnr": float, "ssim": float}``; torch ``N×C×H×W`` batch →
        ``{"psnr": [N floats], "ssim": [N floats]}`` (per-image values, moved to the CPU), ready
        to be averaged per image by the caller.
        """
        p, t = self.prepare(pred, target)
        psnr_v = psnr(p, t, **self._metric_kwargs())
        ssim_v = ssim(p, t, window=self.ssim_window, **self._metric_kwargs())
        if isinstance(psnr_v, torch.Tensor):
            return {"psnr": psnr_v.detach().cpu().tolist(), "ssim": ssim_v.detach().cpu().tolist()}
        return {"psnr": psnr_v, "ssim": ssim_v}

    def score_psnr(
        self, pred: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor
    ) -> float | list[float]:
        """PSNR alone under this protocol: :meth:`score`'s ``"psnr"`` entry, without the SSIM."""
        p, t = self.prepare(pred, target)
        value = psnr(p, t, **self._metric_kwargs())
        return value.detach().cpu().tolist() if isinstance(value, torch.Tensor) else value

    def _metric_kwargs(self) -> dict[str, Any]:
        return {"data_range": 1.0, "y_channel": self.y_channel, "crop_border": self.crop_border}

    def header(self) -> str:
        """One line naming the convention, printed above/below every table of numbers."""
        parts = ["Y (BT.601)" if self.y_channel else "RGB"]
        parts.append(f"PSNR + SSIM ({_WINDOW_TEXT[self.ssim_window]})")
        if self.crop_to_multiple is not None and self.crop_to_multiple > 1:
            parts.append(f"centre crop to ×{self.crop_to_multiple}")
        else:
            parts.append("full image")
        if self.crop_border:
            parts.append(f"{self.crop_border} px border excluded")
        if self.clip:
            parts.append("clipped, 8-bit rounded" if self.quantize_8bit else "clipped")
        else:
            parts.append("not clipped")
        parts.append("mean of per-image values")
        return f"protocol {self.name}: " + ", ".join(parts)


def _registry(*protocols: MetricProtocol) -> Mapping[str, MetricProtocol]:
    return MappingProxyType({p.name: p for p in protocols})


#: The built-in protocols by name (read-only).
PROTOCOLS: Mapping[str, MetricProtocol] = _registry(
    MetricProtocol(
        name="promptir",
        description="AirNet/PromptIR/AdaIR family: scikit-image PSNR and default SSIM, "
        "centre crop to a multiple of 16",
        y_channel=False,
        crop_border=0,
        ssim_window="uniform",
        crop_to_multiple=16,
    ),
    MetricProtocol(
        name="basicsr-y",
        description="BasicSR/Restormer/CPL test_y_channel: MATLAB-style BT.601 Y, Wang et al. "
        "SSIM, 8-bit outputs",
        y_channel=True,
        crop_border=0,
        ssim_window="gaussian",
        crop_to_multiple=None,
        quantize_8bit=True,
    ),
    MetricProtocol(
        name="udair",
        description="UDAIR validation metric (scikit-image PSNR and default SSIM on RGB), "
        "per image instead of pooled over task sub-batches",
        y_channel=False,
        crop_border=0,
        ssim_window="uniform",
        crop_to_multiple=None,
    ),
    MetricProtocol(
        name="clean",
        description="aioir default: RGB, full image, Gaussian 11×11 SSIM (Wang et al. 2004)",
        y_channel=False,
        crop_border=0,
        ssim_window="gaussian",
        crop_to_multiple=None,
    ),
)


def get_protocol(name: str) -> MetricProtocol:
    """The built-in protocol called ``name``; :class:`~aioir.errors.ConfigError` if unknown."""
    try:
        return PROTOCOLS[name]
    except (KeyError, TypeError):
        raise ConfigError(
            f"unknown metric protocol {name!r}; valid names: {', '.join(sorted(PROTOCOLS))}"
        ) from None
