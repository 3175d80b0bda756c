"""Tiled inference: layout, blending weights, equivalence with whole-image inference (per-image
decisions shared by the tiles), the smallest tile, memory."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from aioir.data.samples import sample_images
from aioir.io import load_image
from aioir.models import FilterBankRestorer, create_model
from aioir.nn import GCT
from aioir.nn.image_statistics import has_image_statistics, recording, replaying
from aioir.nn.padding import pad_to_multiple
from aioir.restore import Restorer, tiling
from aioir.restore.tiling import (
    CPU_BUDGET_CAP,
    DEFAULT_BYTES_PER_PIXEL,
    IMAGE_BYTES_PER_PIXEL,
    MIN_AUTO_TILE,
    available_memory,
    axis_weights,
    choose_tile,
    minimum_tile,
    model_bytes_per_pixel,
    record_statistics,
    round_tile,
    run_padded,
    tile_starts,
    tiled_forward,
)
from helpers import psnr_db


def _conv_net(seed: int = 0) -> nn.Module:
    """Three 3×3 convolutions: translation-equivariant, receptive radius 3."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.GELU(),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.GELU(),
        nn.Conv2d(8, 3, 3, padding=1),
    ).eval()


class _NeedsMultiple(nn.Module):
    """Refuses inputs whose sides are not multiples of 8 (like a U-Net without its own padding)."""

    size_multiple = 8

    def __init__(self) -> None:
        super().__init__()
        self.shapes: list[tuple[int, ...]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[-2] % 8 == 0 and x.shape[-1] % 8 == 0, x.shape
        self.shapes.append(tuple(x.shape))
        return x * 0.5 + 0.25


@pytest.mark.parametrize(
    ("length", "tile", "overlap"),
    [(100, 32, 8), (64, 32, 0), (33, 32, 16), (32, 32, 8), (5, 32, 8)],
)
def test_tile_starts_cover_the_axis_with_full_tiles(length, tile, overlap):
    starts = tile_starts(length, tile, overlap)
    covered = torch.zeros(max(length, tile), dtype=torch.int32)
    for s in starts:
        covered[s : s + tile] += 1
        assert s + min(tile, length) <= length  # no tile reaches past the image
    assert bool((covered[:length] > 0).all())
    assert starts == sorted(set(starts))
    if length > tile:
        assert starts[-1] == length - tile
        assert all(b - a <= tile - overlap for a, b in itertools.pairwise(starts))
    else:
        assert starts == [0]


@pytest.mark.parametrize(
    ("length", "tile", "overlap"),
    [(100, 32, 8), (100, 32, 16), (77, 24, 7), (64, 32, 0), (40, 32, 31), (31, 32, 8)],
)
def test_axis_weights_sum_to_one_and_are_one_at_the_border(length, tile, overlap):
    size = min(tile, length)
    starts = tile_starts(length, tile, overlap)
    weights = axis_weights(length, starts, size, overlap)
    total = torch.zeros(length, dtype=torch.float64)
    for s, w in zip(starts, weights):
        assert bool((w >= 0).all())
        total[s : s + size] += w[: length - s]
    torch.testing.assert_close(total, torch.ones(length, dtype=torch.float64), atol=1e-12, rtol=0)
    # the outer border of the image gets the first / last tile alone
    assert weights[0][0] == 1.0 and weights[-1][-1] == 1.0


def test_2d_weights_sum_to_one():
    h, w, tile, overlap = 70, 50, 24, 8
    ys, xs = tile_starts(h, tile, overlap), tile_starts(w, tile, overlap)
    wy, wx = axis_weights(h, ys, tile, overlap), axis_weights(w, xs, tile, overlap)
    total = torch.zeros(h, w, dtype=torch.float64)
    for i, y0 in enumerate(ys):
        for j, x0 in enumerate(xs):
            total[y0 : y0 + tile, x0 : x0 + tile] += wy[i][:, None] * wx[j][None, :]
    torch.testing.assert_close(total, torch.ones(h, w, dtype=torch.float64))


def test_ramp_rises_smoothly_from_zero():
    starts = tile_starts(64, 32, 16)
    first, second = axis_weights(64, starts, 32, 16)[:2]
    ramp = second[:16] * 1.0
    assert ramp[0] == 0.0  # outer quarter of the overlap is ignored
    assert bool((ramp[1:] >= ramp[:-1]).all())
    assert first[:16].eq(1.0).all()


@pytest.mark.parametrize(
    ("shape", "tile", "overlap", "multiple"),
    [((1, 3, 61, 83), 24, 8, 8), ((2, 3, 40, 40), 16, 4, 1), ((1, 3, 1, 1), 16, 4, 8),
     ((1, 3, 7, 130), 32, 12, 8)],
)  # fmt: skip
def test_identity_model_gives_exactly_the_input(shape, tile, overlap, multiple):
    x = torch.rand(*shape)
    out = tiled_forward(lambda t: t, x, tile, overlap=overlap, multiple=multiple, batch_size=3)
    assert out.shape == x.shape
    assert torch.equal(out, x)


@pytest.mark.parametrize("batch_size", [1, 4])
def test_tiled_matches_whole_image_on_a_conv_net(batch_size):
    net = _conv_net()
    x = torch.rand(2, 3, 90, 70)
    with torch.inference_mode():
        whole = net(x)
        tiled = tiled_forward(net, x, 32, overlap=16, multiple=1, batch_size=batch_size)
    torch.testing.assert_close(tiled, whole, atol=1e-5, rtol=0)


def test_tiled_differs_without_overlap_on_a_conv_net():
    """Sanity check that the equivalence above depends on the overlap handling."""
    net = _conv_net()
    x = torch.rand(1, 3, 64, 64)
    with torch.inference_mode():
        whole = net(x)
        seams = tiled_forward(net, x, 32, overlap=0)
    assert (seams - whole).abs().max() > 1e-3


def test_tiles_are_padded_to_the_model_multiple():
    model = _NeedsMultiple()
    x = torch.rand(1, 3, 45, 21)
    out = tiled_forward(model, x, 20, overlap=4, multiple=8, batch_size=2)
    torch.testing.assert_close(out, x * 0.5 + 0.25)
    assert {s[-2:] for s in model.shapes} == {(24, 24)}  # tile 20 rounded to 24; W=21 → 24
    assert max(s[0] for s in model.shapes) == 2  # batched


def test_run_padded_and_pad_to_multiple_handle_a_single_pixel():
    x = torch.rand(1, 3, 1, 1)
    assert pad_to_multiple(x, 8)[0].shape[-2:] == (8, 8)
    torch.testing.assert_close(run_padded(_NeedsMultiple(), x, 8), x * 0.5 + 0.25)


def test_round_tile():
    assert round_tile(500, 8) == 504
    assert round_tile(3, 8) == 8
    with pytest.raises(ValueError):
        round_tile(0, 8)


def test_choose_tile_whole_image_when_it_fits():
    assert choose_tile(64, 64, bytes_per_pixel=1000, available=1 << 30, multiple=8) is None


def test_choose_tile_fits_the_budget():
    avail = 1 << 30
    tile = choose_tile(6000, 4000, bytes_per_pixel=8192, available=avail, multiple=8, batch_size=2)
    assert tile is not None and tile % 8 == 0 and tile >= MIN_AUTO_TILE
    assert tile * tile * 8192 * 2 <= avail * 0.5


def test_choose_tile_caps_the_cpu_budget_but_not_the_gpu():
    avail = 64 << 30
    cpu = choose_tile(8000, 8000, bytes_per_pixel=8192, available=avail, multiple=8)
    gpu = choose_tile(
        8000, 8000, bytes_per_pixel=8192, available=avail, multiple=8, device_type="cuda"
    )
    assert cpu is not None and cpu * cpu * 8192 <= CPU_BUDGET_CAP
    assert gpu is None or gpu > cpu


def test_choose_tile_never_goes_below_the_minimum():
    tile = choose_tile(4000, 4000, bytes_per_pixel=10**9, available=1 << 20, multiple=16)
    assert tile == MIN_AUTO_TILE


def test_available_memory_reads_meminfo(tmp_path, monkeypatch):
    fake = tmp_path / "meminfo"
    fake.write_text("MemTotal:  100 kB\nMemAvailable:   2048 kB\n")
    assert tiling._meminfo_available(fake) == 2048 * 1024
    assert tiling._meminfo_available(tmp_path / "missing") is None
    assert available_memory("cpu") > 0


def test_model_bytes_per_pixel_declared_or_default():
    net = _conv_net()
    assert model_bytes_per_pixel(net) == DEFAULT_BYTES_PER_PIXEL
    net.inference_bytes_per_pixel = 1234
    assert model_bytes_per_pixel(net) == 1234


def test_model_bytes_per_pixel_looks_inside_wrappers():
    network = create_model("udair-tiny")
    assert model_bytes_per_pixel(network) == network.inference_bytes_per_pixel
    wrapped = FilterBankRestorer(network, filters=2, taps=3)
    assert model_bytes_per_pixel(wrapped) > network.inference_bytes_per_pixel  # + the head
    del network.inference_bytes_per_pixel
    assert model_bytes_per_pixel(wrapped) == DEFAULT_BYTES_PER_PIXEL


def test_a_photo_that_fits_the_free_memory_is_restored_in_one_pass():
    """A 1280×960 photo with 21 GiB free was cut into 360-px tiles (issue 22, bug 1)."""
    bpp = model_bytes_per_pixel(Restorer("default", device="cpu").model)
    assert bpp < DEFAULT_BYTES_PER_PIXEL  # the default model declares its cost
    for h, w in ((512, 512), (480, 640), (800, 1000)):
        assert choose_tile(h, w, bytes_per_pixel=bpp, available=21 << 30, multiple=8) is None
    for h, w in ((960, 1280), (3000, 4000), (4000, 6000)):  # over the CPU cap: large tiles
        tile = choose_tile(h, w, bytes_per_pixel=bpp, available=21 << 30, multiple=8)
        image = h * w * IMAGE_BYTES_PER_PIXEL  # the image's own buffers come off the cap
        assert tile is not None and tile * tile * bpp + image <= CPU_BUDGET_CAP and tile >= 512


# ------------------------------------------------------------------ the smallest tile
def test_tiles_below_twice_the_overlap_are_refused():
    assert minimum_tile(32, 8) == 64 and minimum_tile(30, 8) == 64 and minimum_tile(0, 8) == 8
    x = torch.rand(1, 3, 40, 40)
    with pytest.raises(ValueError, match="smallest is 64"):
        tiled_forward(lambda t: t, x, 8, overlap=32, multiple=8)
    assert torch.equal(tiled_forward(lambda t: t, x, 16, overlap=8, multiple=8), x)


def test_choose_tile_respects_the_overlap():
    tile = choose_tile(4000, 4000, bytes_per_pixel=10**9, available=1 << 20, overlap=100)
    assert tile == 200


# ------------------------------------------------------------------ per-image decisions
def _tiny_filter_bank_udair() -> nn.Module:
    """The default model's structure (a UDAIR in a filter-bank wrapper), random weights, with
    GCT gates and a gate MLP that are not constant (they start as the identity / a fixed
    choice)."""
    torch.manual_seed(0)
    model = FilterBankRestorer(create_model("udair-tiny"), filters=2, taps=3).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, GCT):
                m.gamma.normal_()
                m.beta.normal_(0.0, 0.5)
        model.filter_bank.gate[-1].weight.normal_()
    return model


def _photo(name: str = "greentock.jpg") -> torch.Tensor:
    path = next(p for p in sample_images() if p.name == name)
    return torch.from_numpy(load_image(path).rgb).permute(2, 0, 1)[None]


def test_tiles_share_the_whole_image_decisions():
    """Issue 22, bug 1: every tile decided alone (MDTA's attention, GCT's gate, the filter-bank
    choice), so a tiled restoration differed from the whole-image one by blocks."""
    model = _tiny_filter_bank_udair()
    x = _photo()[..., 100:292, 100:356]  # 192×256
    whole = Restorer(model, device="cpu", tile=0).restore_tensor(x)
    restorer = Restorer(model, device="cpu", tile=96, tile_overlap=32)
    assert restorer.tile_for(192, 256) == 96
    tiled = restorer.restore_tensor(x)
    assert psnr_db(tiled, whole) >= 45.0
    with torch.inference_mode():  # the tiles deciding alone: what the test guards against
        alone = tiled_forward(model, x, 96, overlap=32, multiple=8, statistics=False)
    assert psnr_db(alone.clamp(0, 1), whole) < 42.0


def test_an_image_too_large_for_one_pass_takes_its_decisions_from_spread_crops(monkeypatch):
    monkeypatch.setattr(tiling, "CONTEXT_CROP", 48)
    model = _tiny_filter_bank_udair()
    x = _photo()[..., 96:288, 128:384]  # 192×256
    pixels = 5 * 48 * 48  # a quarter of the image at most: 2×2 crops
    with torch.inference_mode():
        kept = record_statistics(model, x, multiple=8, context_pixels=pixels)
        with recording() as whole_image:
            model(x)
        assert kept.values.keys() == whole_image.values.keys()
        assert any(not torch.allclose(v, whole_image.values[k]) for k, v in kept.values.items())
        with replaying(kept):
            reference = model(x).clamp(0, 1)  # the whole image with the crops' decisions
        tiled = tiled_forward(
            model, x, 96, overlap=32, multiple=8, context_pixels=pixels, statistics=True
        )
    assert psnr_db(tiled.clamp(0, 1), reference) >= 45.0  # every tile used those decisions


def test_crops_are_spread_over_the_image():
    assert tiling._spread(100, 20, 1) == [40]
    assert tiling._spread(100, 20, 2) == [15, 65]
    starts = tiling._spread(100, 20, 5)
    assert starts == sorted(starts) and starts[0] == 0 and starts[-1] == 80


def test_a_model_without_per_image_decisions_gets_no_recording_pass():
    calls = []

    def forward(t: torch.Tensor) -> torch.Tensor:
        calls.append(tuple(t.shape))
        return t

    x = torch.rand(1, 3, 64, 64)
    tiled_forward(forward, x, 32, overlap=8)  # a plain callable: no statistics
    assert all(c[-2:] == (32, 32) for c in calls)
    net = _conv_net()
    assert not has_image_statistics(net)


def test_tiled_forward_reports_progress():
    seen = []
    x = torch.rand(1, 3, 50, 70)
    tiled_forward(lambda t: t, x, 32, overlap=8, batch_size=2, progress=lambda *a: seen.append(a))
    assert seen == [(2, 6), (4, 6), (6, 6)]


def test_default_model_tiled_matches_the_whole_image_on_a_photo():
    """Issue 22, bug 1 with the shipped model on a 512×384 photo (12.4 dB apart before; ~10 s
    on 2 quiet CPU cores)."""
    x = _photo()
    whole = Restorer("default", device="cpu", tile=0).restore_tensor(x)
    tiled = Restorer("default", device="cpu", tile=256).restore_tensor(x)
    assert psnr_db(tiled, whole) >= 45.0
