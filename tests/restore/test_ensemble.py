"""The restorer's geometric self-ensemble (``Restorer(self_ensemble=…)``): padded, tiled, averaged."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from aioir.errors import ConfigError
from aioir.geometry import apply_d8, invert_d8
from aioir.nn.ensemble import ENSEMBLE_MODES, preferred_mode
from aioir.restore.api import Restorer


class Asymmetric(nn.Module):
    """A fixed non-symmetric 3×3 convolution (any orientation bias shows up)."""

    size_multiple = 4

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.arange(81, dtype=torch.float32).reshape(3, 3, 3, 3) / 200)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[-2] % 4 == 0 and x.shape[-1] % 4 == 0
        return self.conv(x)


@pytest.mark.parametrize(("tile", "mode"), [(0, "all"), (8, "all"), (0, "flips"), (8, "mirror")])
def test_restorer_self_ensemble_pads_tiles_and_averages(tile, mode):
    g = torch.Generator().manual_seed(1)
    x = torch.rand(1, 3, 13, 10, generator=g) * 0.2
    model = Asymmetric()
    plain = Restorer(model, device="cpu", tile=tile, tile_overlap=2)
    ens = Restorer(model, device="cpu", tile=tile, tile_overlap=2, self_ensemble=mode)
    out = ens.restore_tensor(x)
    assert out.shape == x.shape
    elements = ENSEMBLE_MODES[mode]
    expected = sum(invert_d8(plain.restore_tensor(apply_d8(x, i)), i) for i in elements) / len(
        elements
    )
    assert torch.allclose(out, expected, atol=1e-6)
    assert not torch.allclose(out, plain.restore_tensor(x), atol=1e-3)
    assert f"self_ensemble={mode!r}" in repr(ens)


def test_restorer_self_ensemble_values():
    model = Asymmetric()
    assert Restorer(model, device="cpu", self_ensemble=True).self_ensemble == "flips"
    assert Restorer(model, device="cpu", self_ensemble=False).self_ensemble is None
    assert Restorer(model, device="cpu", self_ensemble=None).self_ensemble is None
    with pytest.raises(ConfigError, match="flips, all"):
        Restorer(model, device="cpu", self_ensemble="x16")


def test_a_bare_self_ensemble_is_the_models_own_mode():
    """``self_ensemble=True`` (a bare ``--self-ensemble``): ``mirror`` for a filter-bank head
    whose classifier reads the photo upright (the default model's kind), ``flips`` for a head
    without one and for any other model."""
    from aioir.models import FilterBankRestorer, create_model
    from helpers import hinting_filter_bank

    assert preferred_mode(hinting_filter_bank()) == "mirror"
    assert Restorer(hinting_filter_bank(), device="cpu", self_ensemble=True).self_ensemble == (
        "mirror"
    )
    plain_head = FilterBankRestorer(create_model("udair-tiny"), filters=2, taps=3)
    assert preferred_mode(plain_head) == "flips" and preferred_mode(Asymmetric()) == "flips"
    named = Restorer(hinting_filter_bank(), device="cpu", self_ensemble="flips")
    assert named.self_ensemble == "flips"  # a named mode is kept


def test_mirror_keeps_up_up():
    """``mirror``: the input and its left–right mirror image, no element that turns the image
    upside down (the first, as every mode's, the image as it is)."""
    x = torch.arange(12.0).view(1, 1, 3, 4)
    seen = [apply_d8(x, k) for k in ENSEMBLE_MODES["mirror"]]
    assert torch.equal(seen[0], x) and torch.equal(seen[1], x.flip(-1))
    assert all(ENSEMBLE_MODES[m][0] == 0 for m in ENSEMBLE_MODES)
