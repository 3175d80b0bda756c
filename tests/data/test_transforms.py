"""Paired crops and flips/rotations."""

from __future__ import annotations

import pytest
import torch

from aioir.data.transforms import (
    PALE_LOOK,
    apply_d8,
    dark_jitter,
    dark_rendering,
    defocus_jitter,
    defocus_rendering,
    ensure_min_size,
    grey_jitter,
    grey_rendering,
    high_key_jitter,
    high_key_rendering,
    low_key_jitter,
    low_key_rendering,
    pale_jitter,
    pale_rendering,
    photometric_jitter,
    random_crop,
    random_flip_rotate,
    white_balance_jitter,
)


def _pair(h: int = 20, w: int = 30) -> tuple[torch.Tensor, torch.Tensor]:
    a = torch.arange(3 * h * w, dtype=torch.float32).view(3, h, w) / (3 * h * w)
    return a, 1.0 - a


def test_random_crop_is_identical_on_pairs() -> None:
    a, b = _pair()
    for seed in range(10):
        ca, cb = random_crop([a, b], 8, torch.Generator().manual_seed(seed))
        assert ca.shape == cb.shape == (3, 8, 8)
        torch.testing.assert_close(cb, 1.0 - ca)
        # the crop is a window of the original
        flat = a.flatten()
        i = int((flat == ca[0, 0, 0]).nonzero()[0])
        top, left = divmod(i, a.shape[-1])
        torch.testing.assert_close(ca, a[:, top : top + 8, left : left + 8])
    corners = {
        float(random_crop([a], (5, 7), torch.Generator().manual_seed(s))[0][0, 0, 0])
        for s in range(20)
    }
    assert len(corners) > 5  # the position really is random


def test_random_crop_rejects_mismatched_pairs() -> None:
    with pytest.raises(ValueError, match="share"):
        random_crop([torch.zeros(3, 10, 10), torch.zeros(3, 10, 12)], 4, torch.Generator())


def test_small_images_are_bicubic_upscaled() -> None:
    a, b = _pair(6, 12)
    ca, cb = random_crop([a, b], 16, torch.Generator().manual_seed(0))
    assert ca.shape == (3, 16, 16)
    torch.testing.assert_close(cb, 1.0 - ca, atol=1e-5, rtol=0)
    up = ensure_min_size(a, 16)
    assert up.shape == (3, 16, 32)  # aspect ratio kept
    assert float(up.min()) >= float(a.min()) and float(up.max()) <= float(a.max())
    labels = torch.randint(0, 4, (6, 12))
    assert ensure_min_size(labels, 16).unique().tolist() == labels.unique().tolist()
    assert ensure_min_size(a, 4) is a


def test_d8_gives_all_eight_distinct_transforms() -> None:
    x = torch.arange(9.0).view(1, 3, 3)
    outs = {tuple(apply_d8(x, k).flatten().tolist()) for k in range(8)}
    assert len(outs) == 8
    torch.testing.assert_close(apply_d8(x, 1), torch.rot90(x, 1, (-2, -1)))
    torch.testing.assert_close(apply_d8(x, 4), x.flip(-1))
    seen = set()
    for seed in range(64):
        a, b = random_flip_rotate([x, -x], torch.Generator().manual_seed(seed))
        torch.testing.assert_close(b, -a)
        seen.add(tuple(a.flatten().tolist()))
    assert seen == outs


def test_udair_mode_is_the_flip_group() -> None:
    x = torch.arange(12.0).view(1, 3, 4)
    allowed = {tuple(t.flatten().tolist()) for t in (x, x.flip(-1), x.flip(-2), x.flip(-1, -2))}
    seen = set()
    for seed in range(40):
        a, b = random_flip_rotate([x, x * 2], torch.Generator().manual_seed(seed), mode="udair")
        assert a.shape == x.shape
        torch.testing.assert_close(b, a * 2)
        seen.add(tuple(a.flatten().tolist()))
    assert seen == allowed
    with pytest.raises(ValueError, match="mode"):
        random_flip_rotate([x], torch.Generator(), mode="nope")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("jitter", "name"),
    [(photometric_jitter, "photometric"), (white_balance_jitter, "white-balance")],
)
def test_clean_patch_jitter_at_zero_strength_is_the_identity_and_draws_nothing(
    jitter, name
) -> None:
    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    gen = torch.Generator().manual_seed(5)
    state = gen.get_state()
    assert jitter(x, gen, 0.0) is x
    assert torch.equal(gen.get_state(), state)
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match=f"{name} strength"):
            jitter(x, torch.Generator(), bad)


def test_photometric_jitter_is_seeded_bounded_and_changes_the_look() -> None:
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    a = photometric_jitter(x, torch.Generator().manual_seed(3), 1.0)
    b = photometric_jitter(x, torch.Generator().manual_seed(3), 1.0)
    assert torch.equal(a, b) and a.shape == x.shape
    assert a.min() >= 0.0 and a.max() <= 1.0
    looks = {
        round(float(photometric_jitter(x, torch.Generator().manual_seed(s), 1.0).mean()), 3)
        for s in range(8)
    }
    assert len(looks) > 4  # exposure differs between draws


def test_white_balance_jitter_scales_channels_and_keeps_brightness() -> None:
    x = torch.full((1, 3, 4, 4), 0.5)  # mid grey: no clipping, gains read off directly
    luma = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    casts = set()
    for seed in range(8):
        y = white_balance_jitter(x, torch.Generator().manual_seed(seed), 1.0)
        assert torch.equal(y, white_balance_jitter(x, torch.Generator().manual_seed(seed), 1.0))
        gains = (y / x)[0, :, 0, 0]
        assert torch.allclose((y * luma).sum(1), torch.full((1, 4, 4), 0.5), atol=1e-6)
        # temperature moves red and blue in opposite directions, within exp(±0.25) before norm
        r_over_b = float(gains[0] / gains[2])
        assert 0.6 < r_over_b < 1.66
        casts.add(r_over_b > 1.0)
    assert casts == {True, False}  # both warm and cool draws occur


def test_pale_rendering_is_bright_flat_and_grey() -> None:
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    y = pale_rendering(x, saturation=0.1, contrast=0.4, mean=0.7)
    assert y.shape == x.shape and float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    assert float(y.mean()) == pytest.approx(0.7, abs=1e-4)
    assert float(y.std()) == pytest.approx(0.4 * float(x.mean(1).std()), rel=0.25)
    spread = (y.amax(1) - y.amin(1)).mean() / (x.amax(1) - x.amin(1)).mean()
    assert float(spread) == pytest.approx(0.1 * 0.4, rel=1e-3)  # colour: ×saturation ×contrast
    # PALE_LOOK is the default look
    assert torch.equal(pale_rendering(x), pale_rendering(x, **PALE_LOOK))


def _assert_renders_with_its_probability(jitter, x: torch.Tensor) -> None:
    """A clean-patch jitter: no change and no draws at probability 0, about half at 0.5."""
    gen = torch.Generator().manual_seed(5)
    state = gen.get_state()
    assert jitter(x, gen, 0.0) is x and torch.equal(gen.get_state(), state)
    rendered = [
        not torch.equal(jitter(x, torch.Generator().manual_seed(s), 0.5), x) for s in range(40)
    ]
    assert 8 < sum(rendered) < 32  # about half


def test_pale_jitter_renders_with_its_probability_and_draws_nothing_at_zero() -> None:
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    _assert_renders_with_its_probability(pale_jitter, x)
    gen = torch.Generator().manual_seed(5)
    always = pale_jitter(x, torch.Generator().manual_seed(2), 1.0)
    assert torch.equal(always, pale_jitter(x, torch.Generator().manual_seed(2), 1.0))
    assert 0.55 <= float(always.mean()) <= 0.8 and float(always.std()) < float(x.std())
    with pytest.raises(ValueError, match="pale strength"):
        pale_jitter(x, gen, 1.5)


def test_defocus_rendering_blurs_by_a_disk_and_blends_by_its_mask() -> None:
    x = torch.zeros(1, 3, 33, 33)
    x[..., 16, 16] = 1.0  # a point light: its image is the disk
    y = defocus_rendering(x, radius=4.0)
    assert float(y.sum()) == pytest.approx(3.0, abs=1e-4)  # energy kept
    spot = y[0, 0] > 1e-6
    rows, cols = spot.nonzero().T
    assert int(rows.max() - rows.min()) == int(cols.max() - cols.min()) == 8  # a 9-px disk
    assert float(y[0, 0, 16, 16]) == pytest.approx(float(y[0, 0, 16, 13]), rel=1e-3)  # flat top
    # the mask blends: 0 keeps the sharp image, 1 the blurred one, per pixel
    mask = torch.zeros(1, 1, 33, 33)
    mask[..., :, 17:] = 1.0
    photo = torch.rand(1, 3, 33, 33, generator=torch.Generator().manual_seed(0))
    half = defocus_rendering(photo, 2.0, mask)
    torch.testing.assert_close(half[..., :17], photo[..., :17], atol=0, rtol=0)
    torch.testing.assert_close(half[..., 17:], defocus_rendering(photo, 2.0)[..., 17:])


def test_defocus_jitter_renders_with_its_probability_whole_or_along_a_ramp() -> None:
    x = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(1))
    _assert_renders_with_its_probability(defocus_jitter, x)
    gen = torch.Generator().manual_seed(5)
    kinds = set()
    for s in range(20):
        y = defocus_jitter(x, torch.Generator().manual_seed(s), 1.0)
        assert torch.equal(y, defocus_jitter(x, torch.Generator().manual_seed(s), 1.0))
        assert float(y.std()) < float(x.std())  # smoother than the noise it came from
        unchanged = (y == x).all(dim=1).float().mean()
        kinds.add("ramp" if unchanged > 0.02 else "whole")  # a ramp keeps a sharp side
    assert kinds == {"ramp", "whole"}
    with pytest.raises(ValueError, match="defocus strength"):
        defocus_jitter(x, gen, 1.5)


def test_dark_rendering_sets_the_mean_and_deepens_the_shadows_more() -> None:
    x = torch.rand(2, 3, 24, 24, generator=torch.Generator().manual_seed(2)) * 0.8 + 0.1
    y = dark_rendering(x, mean=0.1, gamma=2.0)
    torch.testing.assert_close(y.mean(dim=(1, 2, 3)), torch.full((2,), 0.1))
    # the order of the pixels is kept, and a gamma > 1 widens the ratio of light to dark
    flat_x, flat_y = x[0].flatten(), y[0].flatten()
    assert torch.equal(flat_x.argsort(), flat_y.argsort())
    lo, hi = int(flat_x.argmin()), int(flat_x.argmax())
    assert float(flat_y[hi] / flat_y[lo]) > float(flat_x[hi] / flat_x[lo])
    # gamma 1 is a plain exposure change
    torch.testing.assert_close(
        dark_rendering(x, 0.2, 1.0), x * (0.2 / x.mean(dim=(1, 2, 3), keepdim=True))
    )


def test_dark_jitter_renders_with_its_probability_and_draws_nothing_at_zero() -> None:
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    _assert_renders_with_its_probability(dark_jitter, x)
    gen = torch.Generator().manual_seed(4)
    for s in range(10):
        y = dark_jitter(x, torch.Generator().manual_seed(s), 1.0)
        assert 0.05 - 1e-4 <= float(y.mean()) <= 0.25 + 1e-4
    with pytest.raises(ValueError, match="dark strength"):
        dark_jitter(x, gen, 1.5)


def test_high_key_rendering_brightens_the_mid_tones_and_keeps_black_and_white() -> None:
    x = torch.rand(2, 3, 24, 24, generator=torch.Generator().manual_seed(8))
    x[..., 0, 0], x[..., 0, 1] = 0.0, 1.0  # a black and a white pixel in every channel
    y = high_key_rendering(x, gamma=3.0, saturation=1.0)
    assert float(y.mean()) > float(x.mean()) + 0.2  # far brighter
    assert float(y[..., 0, 0].max()) == 0.0 and float(y[..., 0, 1].min()) == 1.0
    flat_x, flat_y = x.flatten(), y.flatten()
    assert bool((flat_y[flat_x.argsort()].diff() >= 0).all())  # the tones' order kept
    torch.testing.assert_close(high_key_rendering(x, gamma=1.0, saturation=1.0), x)
    grey = high_key_rendering(x, gamma=1.0, saturation=0.0)
    assert torch.allclose(grey[:, 0], grey[:, 1]) and torch.allclose(grey[:, 1], grey[:, 2])


def test_high_key_jitter_renders_with_its_probability_and_draws_nothing_at_zero() -> None:
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(9))
    _assert_renders_with_its_probability(high_key_jitter, x)
    for s in range(10):
        y = high_key_jitter(x, torch.Generator().manual_seed(s), 1.0)
        assert float(y.mean()) > float(x.mean())
    with pytest.raises(ValueError, match="high_key strength"):
        high_key_jitter(x, torch.Generator().manual_seed(0), 1.5)


def test_low_key_rendering_darkens_the_mid_tones_and_keeps_the_highlights() -> None:
    """Unlike the dark rendering (and under-exposure), which scales the highlights down too."""
    x = torch.rand(2, 3, 24, 24, generator=torch.Generator().manual_seed(8))
    x[..., 0, 0], x[..., 0, 1] = 0.0, 1.0  # a black and a white pixel in every channel
    y = low_key_rendering(x, gamma=3.0)
    assert float(y.mean()) < float(x.mean()) - 0.2  # far darker
    assert float(y[..., 0, 0].max()) == 0.0 and float(y[..., 0, 1].min()) == 1.0
    assert float(dark_rendering(x).amax()) < 0.9  # (what the low-key look keeps)
    flat_x, flat_y = x.flatten(), y.flatten()
    assert bool((flat_y[flat_x.argsort()].diff() >= 0).all())  # the tones' order kept
    torch.testing.assert_close(low_key_rendering(x, gamma=1.0), x)


def test_low_key_jitter_renders_with_its_probability_and_draws_nothing_at_zero() -> None:
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(9))
    _assert_renders_with_its_probability(low_key_jitter, x)
    for s in range(10):
        y = low_key_jitter(x, torch.Generator().manual_seed(s), 1.0)
        assert float(y.mean()) < float(x.mean()) and float(y.amax()) > 0.9 * float(x.amax()) ** 4
    with pytest.raises(ValueError, match="low_key strength"):
        low_key_jitter(x, torch.Generator().manual_seed(0), 1.5)


def test_grey_rendering_sets_every_channel_to_the_luma_and_the_jitter_says_so() -> None:
    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(6))
    y = grey_rendering(x)
    luma = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    for c in range(3):
        torch.testing.assert_close(y[:, c], luma)
    same, rendered = grey_jitter(x, torch.Generator().manual_seed(0), 0.0)
    assert same is x and not rendered
    picked = [grey_jitter(x, torch.Generator().manual_seed(s), 0.5)[1] for s in range(40)]
    assert 5 < sum(picked) < 35
    with pytest.raises(ValueError, match="grey strength"):
        grey_jitter(x, torch.Generator(), 1.5)
