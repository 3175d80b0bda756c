"""The fusion U-Net base: padding and cropping, the context reaches every fusion point, and
Restormer and NAFNet expose the same hooks at the same widths."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import Tensor, nn

from aioir.models import NAFNet, Restormer
from aioir.models.unet import FUSION_STAGES, FusionUNet, OutputWithMaps, fusion_modules


class _Probe(FusionUNet):
    """A one-convolution 'U-Net' that records what the hooks receive."""

    def __init__(self) -> None:
        super().__init__()
        self.dim = 2
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.fusions = fusion_modules(None)
        self.seen: list[tuple[str, Any, tuple[int, ...]]] = []

    @property
    def feature_channels(self) -> int:
        return 3

    def context(self, x: Tensor) -> Any:
        return tuple(x.shape)

    def unet(self, x: Tensor, ctx: Any) -> tuple[Tensor, Tensor]:
        for stage in FUSION_STAGES:
            self.seen.append((stage, ctx, tuple(x.shape)))
            x = self.fuse(stage, x, ctx)
        out = self.conv(x)
        return out, out


def test_forward_pads_to_the_multiple_passes_the_context_and_crops_back() -> None:
    model = _Probe()
    x = torch.rand(1, 3, 13, 18)
    y = model(x)
    assert y.shape == x.shape
    assert [s for s, _, _ in model.seen] == list(FUSION_STAGES)
    assert {c for _, c, _ in model.seen} == {(1, 3, 16, 24)}  # the context of the padded input
    with torch.no_grad():  # global residual on the padded input
        xp = torch.nn.functional.pad(x, (0, 6, 0, 3), mode="reflect")
        torch.testing.assert_close(y, (model.conv(xp) + xp)[..., :13, :18])
    maps = model.forward_padded_with_maps(xp)
    assert isinstance(maps, OutputWithMaps) and maps.context.shape == (1, 3, 16, 24)


def test_unknown_fusion_stage_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown fusion stages"):
        fusion_modules({"encoder": nn.Identity()})


@pytest.mark.parametrize(
    "model",
    [
        Restormer(dim=8, num_blocks=(1, 1, 1, 1), num_refinement_blocks=1),
        NAFNet(dim=8, num_blocks=(1, 1, 1, 1)),
    ],
    ids=["restormer", "nafnet"],
)
def test_backbones_share_the_fusion_points(model: FusionUNet) -> None:
    calls: dict[str, tuple[int, ...]] = {}

    class Spy(nn.Module):
        def __init__(self, stage: str) -> None:
            super().__init__()
            self.stage = stage

        def forward(self, x: Tensor, ctx: object) -> Tensor:
            calls[self.stage] = tuple(x.shape)
            return x

    model.fusions = fusion_modules({s: Spy(s) for s in FUSION_STAGES})
    with torch.no_grad():
        out = model.forward_padded_with_maps(torch.rand(1, 3, 32, 48))
    assert calls == {"latent": (1, 64, 4, 6), "decoder_level3": (1, 32, 8, 12),
                     "decoder_level2": (1, 16, 16, 24)}  # fmt: skip
    assert out.image.shape == (1, 3, 32, 48)
    assert out.features.shape[1] == model.feature_channels == model.context_map_channels
