"""The degradation classifier: shapes, its pooled statistics, one decision per tiled image."""

from __future__ import annotations

import pytest
import torch

from aioir.nn.degradation_classifier import (
    BandedShadowHighlightDegradationClassifier,
    DegradationClassifier,
    HighlightDegradationClassifier,
    ShadowHighlightDegradationClassifier,
    banded_shadow_terms,
    degradation_classifier,
    highlight_terms,
    shadow_terms,
)
from aioir.nn.image_statistics import recording, replaying

CLASSES = ["noise", "haze", "clean"]


def _classifier() -> DegradationClassifier:
    torch.manual_seed(0)
    return DegradationClassifier(CLASSES, widths=(4, 6), hidden=8).eval()


def test_logits_per_image_at_any_size():
    model = _classifier()
    for shape in [(2, 3, 16, 16), (1, 3, 23, 41)]:
        with torch.no_grad():
            logits = model(torch.rand(shape))
        assert logits.shape == (shape[0], len(CLASSES))
        assert model.last_logits is not None and torch.equal(model.last_logits, logits)
    assert model.num_classes == 3 and model.widths == [4, 6] and model.hidden == 8


def test_pooled_statistics_are_stage_means_and_log_energies():
    model = _classifier()
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        pooled = model.pooled(x)
        h1 = model.stages[0](x * 2 - 1)
        h2 = model.stages[1](h1)
    assert pooled.shape == (2, 2 * (4 + 6))
    torch.testing.assert_close(pooled[:, :4], h1.mean(dim=(2, 3)))
    torch.testing.assert_close(pooled[:, 10:14], h1.pow(2).mean(dim=(2, 3)).log())
    torch.testing.assert_close(pooled[:, 4:10], h2.mean(dim=(2, 3)))


def test_noise_raises_the_first_stage_energy():
    """What the classifier has to read noise from: the full-resolution stage's energy."""
    model = _classifier()
    flat = torch.full((1, 3, 32, 32), 0.5)
    noisy = flat + 0.1 * torch.randn(generator=torch.Generator().manual_seed(0), size=flat.shape)
    with torch.no_grad():
        assert model.pooled(noisy)[0, 10:14].sum() > model.pooled(flat)[0, 10:14].sum()


def test_the_crops_of_a_tiled_image_share_one_decision():
    model = _classifier()
    crops = torch.rand(4, 3, 16, 16)  # 2 crops of each of 2 images, crop-major
    with torch.no_grad(), recording(crops=2) as kept:
        pooled = model(crops)
    assert torch.equal(pooled[0], pooled[2]) and torch.equal(pooled[1], pooled[3])
    assert not torch.equal(pooled[0], pooled[1])
    with torch.no_grad(), replaying(kept):  # every tile replays its image's decision
        again = model(torch.rand(2, 3, 8, 8))
    assert torch.equal(again, pooled[:2])


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="two classes"):
        DegradationClassifier(["only"])
    with pytest.raises(ValueError, match="widths"):
        DegradationClassifier(CLASSES, widths=(4, 0))


def test_highlight_terms_are_log_power_means_of_the_brightest_channel():
    x = torch.zeros(1, 3, 4, 4)
    x[0, 1, 0, 0] = 0.8  # one bright pixel, in green
    x[0, 0] = 0.2  # a dim red everywhere
    terms = highlight_terms(x, [1.0, 64.0])
    m = x.amax(dim=1)
    torch.testing.assert_close(terms[0, 0], m.mean().log())
    torch.testing.assert_close(terms[0, 1], m.pow(64).mean().log() / 64)
    assert terms[0, 1] > terms[0, 0]  # the large power reads the highlight, not the mean
    assert torch.exp(terms[0, 1]) == pytest.approx(0.8 * (1 / 16) ** (1 / 64), rel=1e-4)


def test_one_bright_beam_moves_the_highlight_terms_far_more_than_the_stage_means():
    """Why the variant: one thin bright row in a dark scene moves the p = 128 term by nearly
    the log of its brightness over the scene's (computed without underflow: 0.08^128 is 0 in
    float32); the stage statistics before it are the base class's."""
    torch.manual_seed(0)
    model = HighlightDegradationClassifier(CLASSES, widths=(4, 6), hidden=8, highlight_powers=[128])
    dark = torch.full((1, 3, 32, 32), 0.08)
    beam = dark.clone()
    beam[..., 16, :] = 0.84
    with torch.no_grad():
        a, b = model.pooled(dark), model.pooled(beam)
    assert a.shape == (1, 2 * (4 + 6) + 1)
    assert float(b[0, -1] - a[0, -1]) > 1.5  # log 0.84·(1/32)^(1/128) − log 0.08
    torch.testing.assert_close(a[:, :-1], DegradationClassifier.pooled(model, dark))


def test_the_highlight_variant_is_rebuilt_from_its_record():
    torch.manual_seed(0)
    model = degradation_classifier(CLASSES, (4, 6), 8, highlight_powers=[8, 32])
    assert isinstance(model, HighlightDegradationClassifier)
    record = model.record()
    assert record == {"classes": CLASSES, "widths": [4, 6], "hidden": 8,
                      "highlight_powers": [8.0, 32.0]}  # fmt: skip
    again = degradation_classifier(**record)
    again.load_state_dict(model.state_dict())
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(again(x), model(x))
    plain = degradation_classifier(CLASSES, (4, 6), 8)
    assert type(plain) is DegradationClassifier and "highlight_powers" not in plain.record()
    with pytest.raises(ValueError, match="highlight_powers"):
        HighlightDegradationClassifier(CLASSES, highlight_powers=[8, 0])


def test_black_accents_keep_the_shadow_terms_where_haze_lifts_them():
    """Why the shadow variant: a bright scene with a few black pixels (a white clock's hands)
    reads near-black shadows at p = 128; the same scene hazed (every pixel moved towards a
    bright airlight) reads them lifted, though its mean changes little."""
    torch.manual_seed(0)
    model = ShadowHighlightDegradationClassifier(
        CLASSES, widths=(4, 6), hidden=8, highlight_powers=[8], shadow_powers=[128]
    )
    bright = torch.full((1, 3, 32, 32), 0.8)
    bright[..., 16, 4:12] = 0.02
    hazy = 0.75 * bright + 0.25 * 0.9
    with torch.no_grad():
        a, b = model.pooled(bright), model.pooled(hazy)
    assert a.shape == (1, 2 * (4 + 6) + 2)
    assert float(a[0, -1] - b[0, -1]) > 0.2  # log(1 − 0.02·…) against log(1 − 0.24)
    torch.testing.assert_close(a[:, :-1], HighlightDegradationClassifier.pooled(model, bright))
    torch.testing.assert_close(shadow_terms(bright, [8.0]), highlight_terms(1.0 - bright, [8.0]))


def test_the_shadow_variant_is_rebuilt_from_its_record():
    torch.manual_seed(0)
    model = degradation_classifier(CLASSES, (4, 6), 8, highlight_powers=[8], shadow_powers=[32])
    assert isinstance(model, ShadowHighlightDegradationClassifier)
    record = model.record()
    assert record == {"classes": CLASSES, "widths": [4, 6], "hidden": 8,
                      "highlight_powers": [8.0], "shadow_powers": [32.0]}  # fmt: skip
    again = degradation_classifier(**record)
    again.load_state_dict(model.state_dict())
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(again(x), model(x))
    with pytest.raises(ValueError, match="shadow_powers"):
        degradation_classifier(CLASSES, shadow_powers=[8])  # without highlight_powers
    with pytest.raises(ValueError, match="shadow_powers"):
        ShadowHighlightDegradationClassifier(CLASSES, shadow_powers=[-1])


def test_the_highlight_terms_of_a_tiled_image_are_its_whole_images():
    torch.manual_seed(0)
    image = torch.rand(1, 3, 16, 32)
    crops = torch.cat([image[..., :16], image[..., 16:]])  # 2 crops of one image, crop-major
    with recording(crops=2):
        tiled = highlight_terms(crops, [8.0, 128.0])
    torch.testing.assert_close(tiled[0], highlight_terms(image, [8.0, 128.0])[0])
    assert torch.equal(tiled[0], tiled[1])


def test_banded_shadow_terms_are_each_bands_shadow_terms_top_to_bottom():
    torch.manual_seed(0)
    image = torch.rand(2, 3, 10, 8)
    terms = banded_shadow_terms(image, [8.0, 128.0], bands=3)  # rows 0–3, 4–6, 7–9
    assert terms.shape == (2, 3 * 2)
    for k, (top, bottom) in enumerate([(0, 4), (4, 7), (7, 10)]):
        torch.testing.assert_close(
            terms[:, 2 * k : 2 * k + 2], shadow_terms(image[..., top:bottom, :], [8.0, 128.0])
        )
    with pytest.raises(ValueError, match="bands"):
        banded_shadow_terms(image[..., :2, :], [8.0], bands=3)


def test_haze_that_grows_with_depth_lifts_the_top_bands_shadows_an_even_pale_look_does_not():
    """Why the banded variant: a scene hazed more at the top (its far field) than at the bottom
    and the same scene rendered pale and flat (lifted evenly) can have the same image-wide
    shadow terms; the bands' differ — the hazy one's bottom band keeps near-black shadows."""
    torch.manual_seed(0)
    scene = torch.rand(1, 3, 48, 48) * 0.6
    scene[..., ::6, ::6] = 0.0  # dark accents everywhere
    rows = torch.linspace(0.0, 1.0, 48).view(1, 1, 48, 1)
    transmission = 1.0 - 0.8 * (1.0 - rows)  # 0.2 at the top, 1 at the bottom
    hazy = scene * transmission + 0.9 * (1.0 - transmission)
    pale = scene * 0.5 + 0.9 * 0.5
    model = BandedShadowHighlightDegradationClassifier(
        CLASSES, widths=(4,), hidden=8, highlight_powers=[8], shadow_powers=[128], shadow_bands=3
    )
    with torch.no_grad():
        h, p = model.pooled(hazy)[0, -3:], model.pooled(pale)[0, -3:]
    assert float(h[2]) > -0.1  # the bottom band's darkest pixels are near black
    assert float(h[2] - h[0]) > 0.5  # and the top band's lifted far more
    assert float((p[2] - p[0]).abs()) < 0.01  # evenly lifted


def test_the_banded_variant_is_rebuilt_from_its_record():
    torch.manual_seed(0)
    model = degradation_classifier(
        CLASSES, (4, 6), 8, highlight_powers=[8], shadow_powers=[32], shadow_bands=3
    )
    assert isinstance(model, BandedShadowHighlightDegradationClassifier)
    record = model.record()
    assert record == {"classes": CLASSES, "widths": [4, 6], "hidden": 8,
                      "highlight_powers": [8.0], "shadow_powers": [32.0],
                      "shadow_bands": 3}  # fmt: skip
    again = degradation_classifier(**record)
    again.load_state_dict(model.state_dict())
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(again(x), model(x))
        assert model.pooled(x).shape == (2, 2 * (4 + 6) + 1 + 1 + 3)
    with pytest.raises(ValueError, match="shadow_bands"):
        degradation_classifier(CLASSES, highlight_powers=[8], shadow_bands=3)  # no shadow powers
    for bad in (1, True, 2.5):
        with pytest.raises(ValueError, match="shadow_bands"):
            BandedShadowHighlightDegradationClassifier(CLASSES, shadow_bands=bad)
