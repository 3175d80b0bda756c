from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from aioir.errors import ConfigError
from aioir.metrics import PROTOCOLS, MetricProtocol, get_protocol, psnr, ssim
from aioir.metrics.protocols import center_crop_to_multiple


def _promptir_crop_img(image: np.ndarray, base: int = 16) -> np.ndarray:
    """PromptIR's centre crop, re-derived: drop h % base rows, (h % base) // 2 of them on top."""
    h, w = image.shape[:2]
    ch, cw = h % base, w % base
    return image[ch // 2 : h - ch + ch // 2, cw // 2 : w - cw + cw // 2]


def test_registry_names_and_lookup() -> None:
    assert {"promptir", "basicsr-y", "udair", "clean"} <= set(PROTOCOLS)
    for name, proto in PROTOCOLS.items():
        assert get_protocol(name) is proto
        assert proto.name == name
        assert proto.description


def test_unknown_protocol_lists_valid_names() -> None:
    with pytest.raises(ConfigError) as info:
        get_protocol("psnr-y")
    message = str(info.value)
    assert "psnr-y" in message
    for name in PROTOCOLS:
        assert name in message


def test_registry_and_protocols_are_immutable() -> None:
    with pytest.raises(TypeError):
        PROTOCOLS["mine"] = PROTOCOLS["clean"]  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        PROTOCOLS["clean"].y_channel = True  # type: ignore[misc]


def test_protocol_definitions() -> None:
    p = get_protocol("promptir")
    assert (p.y_channel, p.ssim_window, p.crop_to_multiple, p.clip) == (False, "uniform", 16, True)
    b = get_protocol("basicsr-y")
    assert (b.y_channel, b.ssim_window, b.crop_border, b.crop_to_multiple) == (
        True,
        "gaussian",
        0,
        None,
    )
    u = get_protocol("udair")
    assert (u.y_channel, u.ssim_window, u.crop_to_multiple) == (False, "uniform", None)
    c = get_protocol("clean")
    assert (c.y_channel, c.ssim_window, c.crop_to_multiple, c.quantize_8bit) == (
        False,
        "gaussian",
        None,
        False,
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"ssim_window": "box"},
        {"crop_border": -1},
        {"crop_to_multiple": 0},
        {"clip": False, "quantize_8bit": True},
    ],
)
def test_invalid_protocol_raises_config_error(kwargs: dict[str, object]) -> None:
    base: dict[str, object] = {
        "name": "bad",
        "description": "x",
        "y_channel": False,
        "crop_border": 0,
        "ssim_window": "gaussian",
        "crop_to_multiple": None,
    }
    with pytest.raises(ConfigError, match="bad"):
        MetricProtocol(**{**base, **kwargs})  # type: ignore[arg-type]


@pytest.mark.parametrize(("h", "w"), [(37, 45), (481, 321), (32, 48), (16, 31)])
def test_crop_to_16_numpy_matches_promptir(h: int, w: int) -> None:
    img = np.random.default_rng(h * w).random((h, w, 3))
    cropped = center_crop_to_multiple(img, 16)
    assert cropped.shape == (h - h % 16, w - w % 16, 3)
    np.testing.assert_array_equal(cropped, _promptir_crop_img(img))


def test_crop_to_16_offsets_and_torch() -> None:
    img = np.arange(37 * 45, dtype=np.float64).reshape(37, 45)
    cropped = center_crop_to_multiple(img, 16)
    # 37 % 16 = 5 → 2 rows off the top; 45 % 16 = 13 → 6 columns off the left
    assert cropped.shape == (32, 32)
    assert cropped[0, 0] == img[2, 6]
    t = torch.from_numpy(img).expand(2, 3, 37, 45)
    tc = center_crop_to_multiple(t, 16)
    assert tc.shape == (2, 3, 32, 32)
    np.testing.assert_array_equal(tc[1, 2].numpy(), cropped)
    with pytest.raises(ValueError, match="smaller than the crop multiple"):
        center_crop_to_multiple(np.zeros((15, 40, 3)), 16)


def test_prepare_clips_and_crops_without_modifying_inputs() -> None:
    rng = np.random.default_rng(0)
    pred = rng.normal(0.5, 0.6, (35, 50, 3))
    target = rng.random((35, 50, 3))
    before = pred.copy()
    p, t = get_protocol("promptir").prepare(pred, target)
    np.testing.assert_array_equal(pred, before)
    assert p.shape == t.shape == (32, 48, 3)
    assert p.min() >= 0.0 and p.max() <= 1.0
    np.testing.assert_array_equal(p, _promptir_crop_img(np.clip(pred, 0, 1)))
    # clean: no crop
    p2, _ = get_protocol("clean").prepare(pred, target)
    assert p2.shape == pred.shape


def test_prepare_quantizes_for_basicsr_y() -> None:
    pred = np.random.default_rng(1).random((12, 12, 3)) * 1.2 - 0.1
    p, _ = get_protocol("basicsr-y").prepare(pred, pred)
    np.testing.assert_allclose(p * 255, np.round(p * 255), atol=1e-9)
    np.testing.assert_allclose(p, np.round(np.clip(pred, 0, 1) * 255) / 255)
    # rounding is done in float64, so float32 inputs give exact 8-bit levels too
    p32, _ = get_protocol("basicsr-y").prepare(pred.astype(np.float32), pred.astype(np.float32))
    t32, _ = get_protocol("basicsr-y").prepare(
        torch.from_numpy(pred.astype(np.float32)), torch.from_numpy(pred.astype(np.float32))
    )
    assert p32.dtype == np.float64 and t32.dtype == torch.float64
    levels = np.round(np.clip(pred.astype(np.float32), 0, 1).astype(np.float64) * 255)
    np.testing.assert_array_equal(p32, levels / 255)
    np.testing.assert_array_equal(t32.numpy(), p32)


def test_prepare_rejects_mismatch() -> None:
    proto = get_protocol("promptir")
    with pytest.raises(ValueError, match="shapes differ"):
        proto.prepare(np.zeros((32, 32, 3)), np.zeros((32, 48, 3)))
    with pytest.raises(TypeError):
        proto.prepare(np.zeros((32, 32, 3)), torch.zeros(3, 32, 32))  # type: ignore[type-var]
    with pytest.raises(TypeError, match="float"):
        proto.prepare(np.zeros((32, 32, 3), np.uint8), np.zeros((32, 32, 3), np.uint8))


def test_promptir_score_equals_promptir_pipeline(
    real_pairs: dict[str, tuple[np.ndarray, np.ndarray]],
) -> None:
    restored, clean = real_pairs["chelsea"]  # 300×451: the crop to 16 matters
    restored = restored + 0.02  # push some values above 1 so clipping matters too
    p = _promptir_crop_img(np.clip(restored, 0, 1))
    t = _promptir_crop_img(np.clip(clean, 0, 1))
    expected_psnr = peak_signal_noise_ratio(t, p, data_range=1)
    expected_ssim = structural_similarity(t, p, data_range=1, channel_axis=-1)
    scores = get_protocol("promptir").score(restored, clean)
    assert scores["psnr"] == pytest.approx(expected_psnr, abs=1e-6)
    assert scores["ssim"] == pytest.approx(expected_ssim, abs=1e-6)
    # the crop moves the number (docs/protocols.md, "Measured convention effects": ±0.04 dB)
    assert scores["psnr"] != pytest.approx(get_protocol("udair").score(restored, clean)["psnr"])


def test_basicsr_y_score_equals_basicsr_pipeline(
    real_pairs: dict[str, tuple[np.ndarray, np.ndarray]],
    basicsr_y_metrics: Callable[[np.ndarray, np.ndarray], tuple[float, float]],
) -> None:
    restored, clean = real_pairs["astronaut"]
    # BasicSR: tensor2img clamps and rounds to uint8, then test_y_channel metrics
    p8 = np.round(np.clip(restored, 0, 1) * 255) / 255
    t8 = np.round(np.clip(clean, 0, 1) * 255) / 255
    expected = basicsr_y_metrics(p8, t8)
    scores = get_protocol("basicsr-y").score(restored, clean)
    assert scores["psnr"] == pytest.approx(expected[0], abs=1e-6)
    assert scores["ssim"] == pytest.approx(expected[1], abs=1e-6)


def test_clean_and_udair_scores(real_pairs: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    restored, clean = real_pairs["coffee"]
    c = get_protocol("clean").score(restored, clean)
    assert c == {
        "psnr": pytest.approx(psnr(restored, clean), abs=1e-12),
        "ssim": pytest.approx(ssim(restored, clean), abs=1e-12),
    }
    u = get_protocol("udair").score(restored, clean)
    assert u["ssim"] == pytest.approx(
        structural_similarity(clean, restored, data_range=1, channel_axis=-1), abs=1e-6
    )
    assert u["psnr"] == pytest.approx(c["psnr"], abs=1e-12)


@pytest.mark.parametrize("name", ["promptir", "basicsr-y", "udair", "clean"])
def test_torch_batch_score_is_per_image(name: str) -> None:
    rng = np.random.default_rng(2)
    target = rng.random((3, 40, 37, 3)).astype(np.float32)
    pred = (target + rng.normal(0, 0.08, target.shape)).astype(np.float32)
    proto = get_protocol(name)
    scores = proto.score(
        torch.from_numpy(pred).permute(0, 3, 1, 2), torch.from_numpy(target).permute(0, 3, 1, 2)
    )
    assert set(scores) == {"psnr", "ssim"}
    for key in ("psnr", "ssim"):
        assert isinstance(scores[key], list) and len(scores[key]) == 3
    for i in range(3):
        single = proto.score(pred[i], target[i])
        assert scores["psnr"][i] == pytest.approx(single["psnr"], abs=1e-6)
        assert scores["ssim"][i] == pytest.approx(single["ssim"], abs=1e-6)


def test_headers() -> None:
    assert get_protocol("promptir").header() == (
        "protocol promptir: RGB, PSNR + SSIM (7×7 uniform, sample cov.), centre crop to ×16, "
        "clipped, mean of per-image values"
    )
    b = get_protocol("basicsr-y").header()
    assert b.startswith("protocol basicsr-y: Y (BT.601), PSNR + SSIM (11×11 Gaussian")
    assert "8-bit rounded" in b and "full image" in b
    assert "7×7 uniform" in get_protocol("udair").header()
    assert "11×11 Gaussian σ 1.5, population cov." in get_protocol("clean").header()
    custom = MetricProtocol("sr-x4", "d", True, 4, "gaussian", None, clip=False)
    assert custom.header() == (
        "protocol sr-x4: Y (BT.601), PSNR + SSIM (11×11 Gaussian σ 1.5, population cov.), "
        "full image, 4 px border excluded, not clipped, mean of per-image values"
    )
    for proto in PROTOCOLS.values():
        assert "\n" not in proto.header()
