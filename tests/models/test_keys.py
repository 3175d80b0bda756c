"""State-dict layout equals the authors' code, so their checkpoints load without renaming.

``data/<name>_paper_keys.txt`` lists every key and shape of the reference models (PromptIR
``net/model.py`` with ``decoder=True``; UDAIR ``model/models/UDAIR.py`` + ``codebook.py``).
Spot keys below were read off the reference code by hand.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

import aioir

DATA = Path(__file__).parent / "data"

SPOT = {
    "promptir": {
        "prompt3.prompt_param": (1, 5, 320, 16, 16),
        "prompt1.linear_layer.weight": (5, 96),
        "prompt2.conv3x3.weight": (128, 128, 3, 3),
        "noise_level3.attn.qkv.weight": (2112, 704, 1, 1),
        "reduce_noise_level3.weight": (192, 704, 1, 1),
        "up4_3.body.0.weight": (384, 192, 3, 3),
        "reduce_chan_level3.weight": (192, 288, 1, 1),
        "chnl_reduce3.weight": (256, 320, 1, 1),
        "reduce_noise_channel_3.weight": (192, 448, 1, 1),
        "latent.7.ffn.project_out.weight": (384, 1021, 1, 1),
        "refinement.3.norm2.body.bias": (96,),
    },
    "udair": {
        "dam.codebook.enc_b.blocks.5.conv.1.weight": (32, 128, 3, 3),
        "dam.codebook.enc_t.blocks.0.weight": (64, 128, 4, 4),
        "dam.codebook.dec_t.blocks.5.weight": (128, 64, 4, 4),
        "dam.codebook.quantize_b.embed": (64, 512),
        "dam.codebook.quantize_t.cluster_size": (512,),
        "dam.codebook.quantize_b.embed_avg": (64, 512),
        "dam.codebook.dec.blocks.7.weight": (64, 16, 4, 4),
        "dam.codebook.out_conv.weight": (3, 16, 3, 3),
        "dam.dim.fc2.weight": (96, 128, 1, 1),
        "dam.gct.alpha": (1, 96, 1, 1),
        "distrib_adapt4.adapt.4.gate.1.weight": (96, 384, 1, 1),
        "distrib_adapt2.adapt.5.bias": (48,),
        "dam_level4.weight": (192, 96, 3, 3),
        "dam_level2.weight": (48, 96, 3, 3),
        "dpm_level3.ffn.project_in.weight": (2042, 384, 1, 1),
        "reduce_dpm_level1.weight": (48, 96, 1, 1),
        "logit_scale": (),
        "output.weight": (3, 48, 3, 3),
    },
}


def _expected(name: str) -> list[str]:
    lines = (DATA / f"{name}_paper_keys.txt").read_text().splitlines()
    return [ln for ln in lines if ln and not ln.startswith("#")]


def _actual(name: str) -> list[str]:
    state = aioir.load_model(name).state_dict()
    return [f"{k} {'x'.join(map(str, v.shape)) or 'scalar'}" for k, v in sorted(state.items())]


@pytest.mark.parametrize("name", ["promptir", "udair"])
def test_state_dict_layout_matches_reference(name: str) -> None:
    expected, actual = _expected(name), _actual(name)
    assert len(actual) == len(expected)
    assert actual == expected
    digest = hashlib.sha256("\n".join(expected).encode()).hexdigest()
    assert digest == hashlib.sha256("\n".join(actual).encode()).hexdigest()
    shapes = dict(line.rsplit(" ", 1) for line in expected)
    for key, shape in SPOT[name].items():
        assert shapes[key] == ("x".join(map(str, shape)) or "scalar"), key


def test_restormer_keys_are_the_plain_unet() -> None:
    keys = set(aioir.load_model("restormer-tiny").state_dict())
    assert "encoder_level1.0.attn.temperature" in keys and "up4_3.body.0.weight" in keys
    assert not any(k.startswith(("fusions", "prompt", "dam")) for k in keys)
