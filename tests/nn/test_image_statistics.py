"""Per-image statistics: plain forwards unchanged, recorded once, replayed per tile, crops pooled."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from aioir.nn import GCT, MDTA, SqueezeExcitation
from aioir.nn.filter_bank import FilterBankHead
from aioir.nn.image_statistics import (
    crop_count,
    has_image_statistics,
    image_statistic,
    pool_crops,
    recording,
    replaying,
)
from aioir.nn.prompts import PromptGenBlock


def _layers() -> list[nn.Module]:
    """Layers whose output at a pixel depends on that pixel and their per-image decision only."""
    torch.manual_seed(0)
    mdta, gct = MDTA(8, 2), GCT(8)
    with torch.no_grad():
        mdta.qkv_dwconv.weight.zero_()[:, :, 1, 1] = 1.0  # no 3×3 neighbourhood
        gct.gamma.normal_()  # a gate that is not the identity
        gct.beta.normal_()
    return [mdta.eval(), gct.eval(), SqueezeExcitation(8).eval()]


def _image(seed: int = 1, size: int = 24) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, 8, size, size, generator=g) * torch.linspace(0.2, 2, 8).view(1, 8, 1, 1)


@pytest.mark.parametrize("index", range(3))
def test_recording_changes_nothing_and_replay_gives_tiles_the_whole_image_decision(index):
    layer = _layers()[index]
    x = _image()
    with torch.no_grad():
        plain = layer(x)
        with recording() as kept:
            recorded = layer(x)
        assert torch.equal(recorded, plain) and len(kept) == 1
        own = layer(x[..., :12])  # decides from the half alone
        with replaying(kept):
            shared = layer(torch.cat([x[..., :12], x[..., 12:]]))  # two tiles, one image
    torch.testing.assert_close(shared[:1], plain[..., :12], atol=1e-5, rtol=0)
    torch.testing.assert_close(shared[1:], plain[..., 12:], atol=1e-5, rtol=0)
    assert not torch.allclose(own, plain[..., :12], atol=1e-3)


@pytest.mark.parametrize("index", range(3))
def test_crops_of_one_image_decide_together(index):
    layer = _layers()[index]
    x = _image(size=48)
    halves = torch.cat([x[..., :24], x[..., 24:]])  # crop-major batch, one image
    copies = torch.cat([x, x])
    with torch.no_grad():
        with recording(crops=2):
            together = layer(copies)
        torch.testing.assert_close(together[:1], layer(x), atol=1e-5, rtol=0)
        with recording(crops=2) as kept:
            layer(halves)
        with recording() as whole:
            layer(x)
        with recording() as half:
            layer(x[..., :24])
    (pooled,), (reference,), (alone,) = (s.values.values() for s in (kept, whole, half))
    torch.testing.assert_close(pooled, reference, atol=1e-5, rtol=1e-5)  # the same pixels
    assert not torch.allclose(alone, reference, atol=1e-4)


def test_filter_bank_choice_is_shared_and_pooled_over_crops():
    torch.manual_seed(0)
    head = FilterBankHead(feature_channels=4, context_channels=2, filters=3, taps=3).eval()
    with torch.no_grad():
        head.gate[-1].weight.normal_()
    g = torch.Generator().manual_seed(2)
    y, x = torch.rand(1, 3, 32, 32, generator=g), torch.rand(1, 3, 32, 32, generator=g)
    f, c = torch.rand(1, 4, 32, 32, generator=g), torch.rand(1, 2, 8, 8, generator=g)
    with torch.no_grad():
        whole = head.weights(y, x, f, c)
        left = head.weights(y[..., :16], x[..., :16], f[..., :16], c[..., :4])
        assert not torch.allclose(left, whole, atol=1e-4)
        with recording() as kept:
            head.weights(y, x, f, c)
        with replaying(kept):
            torch.testing.assert_close(head.weights(y[..., :16], x, f, c), whole)
        with recording(crops=2):
            cat = torch.cat
            pooled = head.weights(cat([y, y]), cat([x, x]), cat([f, f]), cat([c, c]))
    torch.testing.assert_close(pooled[:1], whole, atol=1e-3, rtol=0)  # Bessel on 2N pixels


def test_prompt_router_decides_once():
    torch.manual_seed(0)
    block = PromptGenBlock(prompt_dim=4, prompt_len=3, prompt_size=4, lin_dim=8).eval()
    x = _image()
    with torch.no_grad():
        with recording() as kept:
            block(x)
        with replaying(kept):
            shared = block(x[..., :12])
    torch.testing.assert_close(shared, block.compose(block.route(x), (24, 12)))


def test_pool_crops_is_the_identity_outside_a_crop_recording():
    t = torch.arange(6.0).view(3, 2)
    assert pool_crops(t) is t and crop_count() == 1
    with recording(crops=3):
        assert crop_count() == 3
        torch.testing.assert_close(pool_crops(t), t.mean(0).repeat(3, 1))
        torch.testing.assert_close(pool_crops(t, "sum"), t.sum(0).repeat(3, 1))
        logs = pool_crops(t, "logmeanexp")  # the log of the mean of the crops' means
        torch.testing.assert_close(logs, t.exp().mean(0).log().repeat(3, 1))
        with pytest.raises(ValueError, match="logmeanexp"):
            pool_crops(t, "max")
    with pytest.raises(ValueError, match="crops"), recording(crops=0):
        pass


def test_replay_repeats_per_image_values_and_refuses_an_unrecorded_call():
    layer = nn.Identity()
    with recording() as kept:
        image_statistic(layer, 2, lambda: torch.tensor([[1.0], [2.0]]))
    with replaying(kept):
        out = image_statistic(layer, 6, lambda: torch.zeros(6, 1))
        assert out.flatten().tolist() == [1.0, 2.0] * 3  # tile-major: tile k of image i
        with pytest.raises(RuntimeError, match="did not make"):
            image_statistic(layer, 2, lambda: torch.zeros(2, 1))  # a second call: unrecorded


def test_has_image_statistics():
    assert has_image_statistics(nn.Sequential(nn.Conv2d(8, 8, 1), MDTA(8, 2)))
    assert not has_image_statistics(nn.Sequential(nn.Conv2d(8, 8, 1), nn.GELU()))
