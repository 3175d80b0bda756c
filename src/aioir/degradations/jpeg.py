"""JPEG compression artefacts: a real encode/decode round trip through Pillow's libjpeg."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import torch
from PIL import Image

from aioir.degradations.base import Degradation, register_degradation

__all__ = ["JPEGCompression", "jpeg_roundtrip"]


def jpeg_roundtrip(image: np.ndarray, quality: int, subsampling: int = 2) -> np.ndarray:
    """Encode an H×W×3 uint8 array as baseline JPEG and decode it again (uint8 back).

    ``subsampling`` uses Pillow's codes: 0 = 4:4:4, 1 = 4:2:2, 2 = 4:2:0 (the default, as
    written by cameras, browsers and OpenCV's ``imwrite``).
    """
    buf = io.BytesIO()
    Image.fromarray(image).save(
        buf, format="JPEG", quality=int(quality), subsampling=subsampling, optimize=False
    )
    buf.seek(0)
    with Image.open(buf) as decoded:
        return np.asarray(decoded.convert("RGB"), dtype=np.uint8).copy()


@register_degradation("jpeg", task="jpeg")
@dataclasses.dataclass(frozen=True)
class JPEGCompression(Degradation):
    """JPEG compression at a fixed quality factor (libjpeg scale, 4:2:0 chroma subsampling).

    Each image is rounded to uint8, encoded with Pillow and decoded; the round trip is
    deterministic, so ``apply`` ignores its generator.

    Parameters
    ----------
    quality:
        libjpeg quality factor, range 10–95 (1–100 accepted). :meth:`sample` maps severity
        linearly from 95 (severity 0) to 10 (severity 1): tier midpoints ≈ 81 / 52 / 24.
        ABAIR's unseen-task benchmark uses Q = 20; the JPEG-AR literature (ARCNN, FBCNN)
        evaluates Q ∈ {10, 20, 30, 40}.
    """

    quality: int

    def __post_init__(self) -> None:
        if int(self.quality) != self.quality or not 1 <= self.quality <= 100:
            raise ValueError(f"quality must be an integer in [1, 100], got {self.quality}")

    @classmethod
    def sample(cls, severity: float, generator: torch.Generator) -> JPEGCompression:
        """quality = round(95 − 85·severity) (deterministic in severity)."""
        return cls(quality=round(95.0 - 85.0 * float(severity)))

    def apply(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Round-trip every image of the batch through JPEG."""
        arr = images.detach().clamp(0.0, 1.0).mul(255.0).round().to("cpu", torch.uint8)
        arr = arr.permute(0, 2, 3, 1).numpy()
        out = np.stack([jpeg_roundtrip(np.ascontiguousarray(a), self.quality) for a in arr])
        result = torch.from_numpy(out).permute(0, 3, 1, 2).to(images.dtype) / 255.0
        return result.to(images.device)
