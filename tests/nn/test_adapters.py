"""Distribution adapters and LoRA."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from aioir.nn import (
    DistributionAdapter,
    LoRAConv2d,
    LoRALinear,
    TransformerBlock,
    inject_lora,
    lora_parameters,
    lora_state_dict,
    mark_only_lora_trainable,
    merge_lora,
    set_lora_enabled,
    unmerge_lora,
    wrap_lora,
)


def test_distribution_adapter_reference_size_and_keys() -> None:
    a = DistributionAdapter(48)
    assert sum(p.numel() for p in a.parameters()) == 15_048
    assert "adapt.4.gate.1.weight" in a.state_dict() and "adapt.5.bias" in a.state_dict()
    x = torch.randn(1, 48, 8, 8)
    assert not torch.allclose(a(x), x)


def test_zero_init_residual_adapter_is_identity() -> None:
    a = DistributionAdapter(16, residual=True, zero_init=True)
    x = torch.randn(2, 16, 5, 5)
    torch.testing.assert_close(a(x), x)
    plain = DistributionAdapter(16, zero_init=True)
    torch.testing.assert_close(plain(x), torch.zeros_like(x))


@pytest.mark.parametrize("kind", ["conv", "linear"])
def test_lora_b_zero_is_unchanged_and_merge_matches(kind: str) -> None:
    torch.manual_seed(0)
    base = nn.Conv2d(6, 10, 1) if kind == "conv" else nn.Linear(6, 10)
    x = torch.randn(2, 6, 4, 4) if kind == "conv" else torch.randn(3, 6)
    ref = base(x)
    lora = wrap_lora(base, rank=2, alpha=4)
    assert isinstance(lora, LoRAConv2d if kind == "conv" else LoRALinear)
    assert lora.weight is base.weight  # shares, does not copy
    torch.testing.assert_close(lora(x), ref)
    with torch.no_grad():
        lora.lora_B.normal_()
    unmerged = lora(x)
    assert not torch.allclose(unmerged, ref)
    w0 = lora.weight.detach().clone()
    lora.merge()
    torch.testing.assert_close(lora(x), unmerged, atol=1e-5, rtol=1e-5)
    lora.unmerge()
    torch.testing.assert_close(lora.weight, w0, atol=1e-6, rtol=1e-6)
    lora.set_enabled(False)
    torch.testing.assert_close(lora(x), ref)


def test_inject_lora_into_transformer_block() -> None:
    torch.manual_seed(0)
    tb = TransformerBlock(8, 2)
    base_state = {k: v.clone() for k, v in tb.state_dict().items()}
    x = torch.randn(1, 8, 4, 4)
    ref = tb(x)
    names = inject_lora(tb, lambda name, layer: name.endswith(("qkv", "project_in")), rank=2)
    assert names == ["attn.qkv", "ffn.project_in"]  # depthwise 3x3 convs are never offered
    torch.testing.assert_close(tb(x), ref)
    state = tb.state_dict()
    assert set(base_state) <= set(state)
    assert set(lora_state_dict(tb)) == {
        "attn.qkv.lora_A", "attn.qkv.lora_B", "ffn.project_in.lora_A", "ffn.project_in.lora_B"
    }  # fmt: skip
    # a base checkpoint loads with only the LoRA keys missing
    result = tb.load_state_dict(base_state, strict=False)
    assert sorted(result.missing_keys) == sorted(lora_state_dict(tb))
    mark_only_lora_trainable(tb)
    trainable = {n for n, p in tb.named_parameters() if p.requires_grad}
    assert trainable == set(lora_state_dict(tb))
    assert len(list(lora_parameters(tb))) == 4
    with torch.no_grad():
        for p in lora_parameters(tb):
            p.normal_()
    adapted = tb(x)
    merge_lora(tb)
    torch.testing.assert_close(tb(x), adapted, atol=1e-4, rtol=1e-4)
    unmerge_lora(tb)
    set_lora_enabled(tb, False)
    torch.testing.assert_close(tb(x), ref, atol=1e-5, rtol=1e-5)


def test_wrap_lora_rejects_non_pointwise_conv() -> None:
    with pytest.raises(TypeError):
        wrap_lora(nn.Conv2d(4, 4, 3, padding=1))
    with pytest.raises(ValueError):
        wrap_lora(nn.Linear(4, 4), rank=0)
