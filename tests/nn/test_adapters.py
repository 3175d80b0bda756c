"""Distribution adapters and the multi-adapter LoRA."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from aioir.nn import (
    DistributionAdapter,
    MultiLoRAConv2d,
    TransformerBlock,
    add_lora_adapter,
    inject_lora,
    lora_parameters,
    lora_state_dict,
    mark_only_lora_trainable,
    merge_lora,
    set_adapter_weights,
    unmerge_lora,
)
from aioir.nn.adapters import lora_adapter_count


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


def _randomised(layer: MultiLoRAConv2d, seed: int = 0) -> MultiLoRAConv2d:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for b in layer.lora_B:
            b.copy_(torch.randn(b.shape, generator=gen))
    return layer


def test_multi_lora_new_adapters_change_nothing_and_blend_per_sample() -> None:
    torch.manual_seed(0)
    base = nn.Conv2d(6, 5, 1, bias=True)
    x = torch.randn(3, 6, 4, 4)
    ref = base(x)
    layer = MultiLoRAConv2d.from_layer(base, rank=2, alpha=4, num_adapters=3)
    assert layer.weight is base.weight  # shares, does not copy
    torch.testing.assert_close(layer(x), ref)  # no weights set: the plain convolution
    layer.adapter_weights = torch.ones(3, 3)
    torch.testing.assert_close(layer(x), ref)  # B = 0 at creation
    _randomised(layer)
    w = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.2, 0.5, 0.3]])
    layer.adapter_weights = w
    out = layer(x)
    for i in range(3):  # each sample gets W + Σ_k w_ik ΔW_k, computed by hand
        weight = layer.weight + layer.delta_weight(w[i])
        expected = nn.functional.conv2d(x[i : i + 1], weight, layer.bias)
        torch.testing.assert_close(out[i : i + 1], expected, atol=1e-5, rtol=1e-5)
    delta = (layer.lora_B[1] @ layer.lora_A[1]) * 2.0  # α/r = 2
    torch.testing.assert_close(layer.delta_weight([0, 1, 0]).view(5, 6), delta)


def test_multi_lora_merge_equals_unmerged_forward_and_unmerges() -> None:
    torch.manual_seed(1)
    layer = _randomised(MultiLoRAConv2d(6, 5, rank=4, num_adapters=2), seed=3)
    x = torch.randn(2, 6, 3, 3)
    w0 = layer.weight.detach().clone()
    layer.adapter_weights = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    unmerged = layer(x)
    layer.merge([0.0, 1.0])
    torch.testing.assert_close(layer(x), unmerged, atol=1e-5, rtol=1e-5)  # not applied twice
    layer.adapter_weights = None
    torch.testing.assert_close(layer(x), unmerged, atol=1e-5, rtol=1e-5)
    with pytest.raises(RuntimeError, match="unmerge"):
        layer.add_adapter()
    layer.unmerge()
    torch.testing.assert_close(layer.weight, w0, atol=1e-6, rtol=1e-6)


def test_multi_lora_checks_weight_shape_and_rank() -> None:
    layer = MultiLoRAConv2d(4, 4, num_adapters=2)
    layer.adapter_weights = torch.ones(2, 3)
    with pytest.raises(ValueError, match="B×2"):
        layer(torch.randn(2, 4, 2, 2))
    with pytest.raises(ValueError, match="rank"):
        MultiLoRAConv2d(4, 4, rank=0)
    with pytest.raises(TypeError):
        MultiLoRAConv2d.from_layer(nn.Conv2d(4, 4, 3, padding=1))


def test_inject_lora_into_transformer_block_and_add_an_adapter_later() -> None:
    torch.manual_seed(0)
    tb = TransformerBlock(8, 2)
    base_state = {k: v.clone() for k, v in tb.state_dict().items()}
    x = torch.randn(2, 8, 4, 4)
    ref = tb(x)
    names = inject_lora(
        tb, lambda name, layer: name.endswith(("qkv", "project_in")), rank=2, num_adapters=1
    )
    assert names == ["attn.qkv", "ffn.project_in"]  # depthwise 3x3 convs are never offered
    torch.testing.assert_close(tb(x), ref)
    assert set(lora_state_dict(tb)) == {
        "attn.qkv.lora_A.0", "attn.qkv.lora_B.0", "ffn.project_in.lora_A.0",
        "ffn.project_in.lora_B.0",
    }  # fmt: skip
    # a base checkpoint loads with only the LoRA keys missing
    result = tb.load_state_dict(base_state, strict=False)
    assert sorted(result.missing_keys) == sorted(lora_state_dict(tb))
    with torch.no_grad():
        for p in lora_parameters(tb):
            p.normal_()
    old = {k: v.clone() for k, v in tb.state_dict().items()}
    set_adapter_weights(tb, torch.tensor([[1.0], [1.0]]))
    first = tb(x)
    assert not torch.allclose(first, ref)
    assert add_lora_adapter(tb) == 1 and lora_adapter_count(tb) == 2
    new_state = tb.state_dict()
    for k, v in old.items():  # adding an adapter touches nothing that was there
        assert torch.equal(new_state[k], v), k
    set_adapter_weights(tb, torch.tensor([[1.0, 0.0], [1.0, 0.0]]))
    torch.testing.assert_close(tb(x), first)
    mark_only_lora_trainable(tb, adapters=[1])
    trainable = {n for n, p in tb.named_parameters() if p.requires_grad}
    assert trainable == set(lora_state_dict(tb, adapters=[1]))
    assert len(list(lora_parameters(tb, adapters=[1]))) == 4
    with pytest.raises(ValueError, match="no adapter 2"):
        mark_only_lora_trainable(tb, adapters=[2])
    merge_lora(tb, [1.0, 0.0])
    set_adapter_weights(tb, None)
    torch.testing.assert_close(tb(x), first, atol=1e-4, rtol=1e-4)
    unmerge_lora(tb)
    torch.testing.assert_close(tb(x), ref, atol=1e-5, rtol=1e-5)
