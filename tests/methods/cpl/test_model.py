"""CPL's network: presets, the authors' layout and outputs, the router from configs, negatives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

import aioir
from aioir.errors import CheckpointError, ConfigError
from aioir.methods.cpl import CPL, negative_prompt_weights
from aioir.methods.cpl.model import CPL_PRESETS
from aioir.models import save_pretrained
from aioir.nn.prompts import PromptGenBlock, SoftmaxRouter, TopKRouter, build_router, router_spec
from cpl_helpers import fill_parameters

DATA = Path(__file__).parent / "data"


def _reference_keys() -> dict[str, tuple[int, ...]]:
    """The authors' ``SparsePromptIR(decoder=True)`` state-dict keys and shapes (recorded)."""
    out = {}
    for line in (DATA / "sparsepromptir_keys.tsv").read_text().splitlines():
        if line and not line.startswith("#"):
            key, shape = line.split("\t")
            out[key] = tuple(int(s) for s in shape.split("x"))
    return out


@pytest.fixture(scope="module")
def paper() -> CPL:
    torch.manual_seed(0)
    model = aioir.load_model("cpl")
    assert isinstance(model, CPL)
    return model


# ------------------------------------------------------------------------------ presets
@pytest.mark.parametrize("preset", ["small", "tiny"])
def test_presets_declared_counts_and_router(preset: str) -> None:
    model = aioir.load_model(f"cpl-{preset}")
    assert sum(p.numel() for p in model.parameters()) == CPL_PRESETS[preset].parameters
    for block in (model.prompt1, model.prompt2, model.prompt3):
        assert isinstance(block.router, TopKRouter) and block.router.k == 1
    assert not hasattr(model, "chnl_reduce1")


def test_paper_preset_is_the_authors_layout(paper: CPL) -> None:
    ours = {k: tuple(v.shape) for k, v in paper.state_dict().items()}
    ref = _reference_keys()
    assert ours == ref  # PromptIR's keys minus its six unused 1×1 convolutions
    assert sum(p.numel() for p in paper.parameters()) == CPL_PRESETS["paper"].parameters
    promptir = aioir.load_model("promptir")
    assert set(promptir.state_dict()) - set(ours) == {
        f"{m}.weight"
        for m in (
            "chnl_reduce1", "chnl_reduce2", "chnl_reduce3",
            "reduce_noise_channel_1", "reduce_noise_channel_2", "reduce_noise_channel_3",
        )
    }  # fmt: skip


@pytest.mark.slow  # the paper-size network on 2 CPU cores: ~15 s
def test_authors_basicsr_file_gives_the_authors_output(paper: CPL, tmp_path: Path) -> None:
    """Recorded once from the authors' SparsePromptIR with the same name-keyed weights; the
    weights travel in a BasicSR file (``params`` beside ``params_ema``: the EMA ones count)."""
    fill_parameters(paper)
    state = paper.state_dict()
    path = tmp_path / "CPLIR_model.pth"
    zeros = {k: torch.zeros_like(v) for k, v in state.items()}
    torch.save({"params": zeros, "params_ema": state}, path)
    loaded = aioir.load_model("cpl", checkpoint=path)
    io = load_file(DATA / "sparsepromptir_io.safetensors")
    with torch.no_grad():
        y = loaded(io["input"])
    assert torch.allclose(y, io["output"], atol=1e-4, rtol=0)


@pytest.mark.parametrize("wrap", ["raw", "params", "params_ema"])
def test_authors_checkpoint_formats_load(tmp_path: Path, wrap: str) -> None:
    model = aioir.load_model("cpl-tiny")
    fill_parameters(model)
    state = model.state_dict()
    if wrap == "raw":
        obj: dict = dict(state)
    elif wrap == "params":
        obj = {"params": dict(state)}
    else:
        obj = {"params": {k: torch.zeros_like(v) for k, v in state.items()}, "params_ema": state}
    path = tmp_path / "CPLIR_model.pth"
    torch.save(obj, path)
    loaded = aioir.load_model("cpl-tiny", checkpoint=path)
    for k, v in loaded.state_dict().items():
        assert torch.equal(v, state[k]), k


def test_promptir_checkpoint_needs_strict_false(tmp_path: Path) -> None:
    dense = aioir.load_model("promptir-tiny", parity_layers=True)
    path = tmp_path / "promptir.pth"
    torch.save(dense.state_dict(), path)
    with pytest.raises(CheckpointError, match="unexpected keys: chnl_reduce1"):
        aioir.load_model("cpl-tiny", checkpoint=path)
    model = aioir.load_model("cpl-tiny", checkpoint=path, strict=False)
    assert torch.equal(model.prompt1.prompt_param, dense.prompt1.prompt_param)


@pytest.mark.parametrize("size", [(13, 21), (16, 16), (1, 7)])
def test_tiny_any_size_round_trips(size: tuple[int, int]) -> None:
    model = aioir.load_model("cpl-tiny")
    x = torch.rand(2, 3, *size)
    with torch.no_grad():
        assert model(x).shape == x.shape


def test_pads_to_16_as_the_authors_test() -> None:
    model = aioir.load_model("cpl-tiny")
    assert model.size_multiple == 16
    x = torch.rand(1, 3, 20, 20)
    with torch.no_grad():
        y = model(x)
        xp = F.pad(x, (0, 12, 0, 12), mode="reflect")
        assert torch.equal(y, model.forward_padded(xp)[..., :20, :20])
    with pytest.raises(ConfigError, match="size_multiple"):
        aioir.load_model("cpl-tiny", size_multiple=12)


# ------------------------------------------------------------------------------ the router
def test_prompt_block_equals_the_authors_training_block() -> None:
    """Positive and negative prompts against the authors' training PromptGenBlock (recorded;
    the negatives with the same global seed, as their draw uses it)."""
    io = load_file(DATA / "prompt_block_io.safetensors")
    x = io["input"]
    for k in (1, 2):
        block = PromptGenBlock(8, 5, 6, 12, TopKRouter(k))
        fill_parameters(block)
        with torch.no_grad():
            assert torch.allclose(block(x), io[f"positive_k{k}"], atol=1e-5, rtol=0)
            torch.manual_seed(7)
            negs = []
            for _ in range(3):
                w = negative_prompt_weights(block.logits(x).softmax(-1), k)
                negs.append(block.compose(w, (x.shape[-2], x.shape[-1]), active=k))
            assert torch.allclose(torch.cat(negs), io[f"negative_k{k}"], atol=1e-5, rtol=0)


def test_gathered_top_k_equals_the_dense_sum() -> None:
    torch.manual_seed(0)
    block = PromptGenBlock(8, 5, 6, 12, TopKRouter(2))
    x = torch.randn(3, 12, 9, 11, requires_grad=True)
    sparse = block(x)  # gathers the 2 selected entries
    dense = block.compose(block.route(x), (9, 11))  # the authors' sum over all 5
    assert torch.allclose(sparse, dense, atol=1e-6)
    g_sparse = torch.autograd.grad(sparse.square().sum(), [x, block.prompt_param])
    g_dense = torch.autograd.grad(dense.square().sum(), [x, block.prompt_param])
    for a, b in zip(g_sparse, g_dense, strict=True):
        assert torch.allclose(a, b, atol=1e-5)


def test_top_k_weights_are_not_renormalised() -> None:
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0, 0.5]])
    w = TopKRouter(1)(logits)
    p = logits.softmax(-1)
    assert torch.equal(w, torch.tensor([[p[0, 0].item(), 0, 0, 0, 0]]))
    assert w.sum() < 1


def test_router_registry() -> None:
    assert isinstance(build_router("softmax"), SoftmaxRouter)
    r = build_router({"name": "topk", "k": 2})
    assert isinstance(r, TopKRouter) and r.active == 2
    assert router_spec(r) == {"name": "topk", "k": 2}
    assert router_spec(build_router(router_spec(r))) == router_spec(r)
    with pytest.raises(ConfigError, match="unknown name 'sparse'"):
        build_router("sparse")
    with pytest.raises(ConfigError, match="invalid options"):
        build_router({"name": "topk", "k": 0})
    with pytest.raises(ConfigError, match="invalid options"):
        aioir.load_model("cpl-tiny", router={"name": "topk", "q": 1})


def test_router_from_overrides_survives_a_saved_model(tmp_path: Path) -> None:
    model = aioir.load_model("cpl-tiny", router={"name": "topk", "k": 2})
    assert model.prompt2.router.active == 2 and model.negative_k == 2
    save_pretrained(model, tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["overrides"]["router"] == {"name": "topk", "k": 2}
    again = aioir.load_model(tmp_path / "m")
    assert again.prompt3.router.active == 2
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(again(x), model(x))
    dense = aioir.load_model("cpl-tiny", router="softmax")
    assert dense.prompt1.router.active is None and dense.negative_k == 1


# ------------------------------------------------------------------------------ negatives
def test_negative_weights_exclude_the_top_k() -> None:
    torch.manual_seed(0)
    probs = torch.rand(200, 5).softmax(-1)
    for k in (1, 2):
        w = negative_prompt_weights(probs, k)
        nonzero = w > 0
        assert bool((nonzero.sum(-1) == k).all())
        top = probs.topk(k, dim=-1).indices
        assert not bool(nonzero.gather(-1, top).any())
        assert torch.equal(w[nonzero], probs[nonzero])  # each keeps its own probability
    # uniform over the other N - k entries
    probs = torch.tensor([[0.6, 0.1, 0.1, 0.1, 0.1]]).repeat(4000, 1)
    counts = (negative_prompt_weights(probs, 1) > 0).float().sum(0)
    assert counts[0] == 0 and bool(((counts[1:] / 4000 - 0.25).abs() < 0.03).all())
    with pytest.raises(ValueError, match="N >= 2k"):
        negative_prompt_weights(probs, 3)


def test_forward_negatives() -> None:
    torch.manual_seed(0)
    model = aioir.load_model("cpl-tiny").train()
    x = torch.rand(2, 3, 20, 24)
    negs = model.forward_negatives(x, 4, generator=torch.Generator().manual_seed(1))
    assert negs.shape == (4, 2, 3, 20, 24) and not negs.requires_grad
    again = model.forward_negatives(x, 4, generator=torch.Generator().manual_seed(1))
    assert torch.equal(negs, again)
    with torch.no_grad():
        pos = model(x)
    assert not torch.allclose(negs[0], pos)
    # each negative is one forward with mismatched prompts in all three modules
    calls: list[str] = []
    for name in ("prompt1", "prompt2", "prompt3"):
        getattr(model, name).register_forward_hook(lambda *_: calls.append("routed"))
    model.forward_negatives(x, 2)
    assert calls == []  # negatives compose their own weights, not the routed ones


def test_saved_weights_round_trip_through_safetensors(tmp_path: Path) -> None:
    model = aioir.load_model("cpl-tiny")
    save_file(model.state_dict(), str(tmp_path / "w.safetensors"))
    loaded = aioir.load_model("cpl-tiny", checkpoint=tmp_path / "w.safetensors")
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
