"""Every degradation degrades more at a higher severity tier: the mean PSNR to the clean batch
falls from the mild to the moderate to the severe tier midpoint (low light also darkens)."""

from __future__ import annotations

import pytest
import torch

from aioir.degradations import available_degradations, degradation_class
from helpers import TIER_MIDPOINTS, astronaut_batch, psnr_db

# registered name → (image side, seeds averaged, seed of apply's generator: None = the one that
# sampled the parameters goes on; N = a fresh generator seeded N + seed)
CASES: dict[str, tuple[int, int, int | None]] = {
    "gaussian_noise": (48, 4, None),
    "camera_noise": (48, 4, None),
    "jpeg": (48, 1, None),  # sample() and apply() draw nothing: one seed is all there is
    "motion_blur": (48, 3, None),
    "gaussian_blur": (48, 3, None),
    "defocus_blur": (48, 3, None),
    "low_light": (48, 4, None),
    "rain": (64, 4, 100),
    "haze": (64, 4, 100),
    "underwater": (64, 4, 100),
}


def _degraded(name: str) -> tuple[torch.Tensor, list[list[torch.Tensor]]]:
    """The clean batch and, per tier midpoint, its degraded copies (one per seed)."""
    size, seeds, apply_seed = CASES[name]
    x = astronaut_batch(size)
    cls = degradation_class(name)
    tiers = []
    for severity in TIER_MIDPOINTS:
        outputs = []
        for seed in range(seeds):
            gen = torch.Generator().manual_seed(seed)
            deg = cls.sample(severity, gen)
            if apply_seed is not None:
                gen = torch.Generator().manual_seed(apply_seed + seed)
            outputs.append(deg.apply(x, gen))
        tiers.append(outputs)
    return x, tiers


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def test_every_degradation_is_covered() -> None:
    assert set(CASES) == set(available_degradations()) - {"identity"}


@pytest.mark.parametrize("name", sorted(CASES))
def test_higher_severity_degrades_more(name: str) -> None:
    x, tiers = _degraded(name)
    scores = [_mean([psnr_db(y, x) for y in outputs]) for outputs in tiers]
    assert scores[0] > scores[1] > scores[2], scores


def test_low_light_darkens_with_severity() -> None:
    x, tiers = _degraded("low_light")
    brightness = [_mean([float(y.mean()) for y in outputs]) for outputs in tiers]
    assert float(x.mean()) > brightness[0] > brightness[1] > brightness[2], brightness
