"""BT.601 luma weights: the two written forms are the same numbers, to the last bit."""

from __future__ import annotations

from aioir.color import BT601_LUMA, BT601_OFFSET, BT601_RGB_WEIGHTS


def test_luma_weights_sum_to_one() -> None:
    assert BT601_LUMA == (0.299, 0.587, 0.114)
    assert abs(sum(BT601_LUMA) - 1.0) < 1e-12


def test_studio_range_weights_are_matlabs_rgb2ycbcr_constants_exactly() -> None:
    assert BT601_RGB_WEIGHTS == (65.481, 128.553, 24.966)
    assert BT601_OFFSET == 16.0
    assert BT601_OFFSET + sum(BT601_RGB_WEIGHTS) == 235.0  # white → Y255 235
