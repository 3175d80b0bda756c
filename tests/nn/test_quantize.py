"""EMA vector quantiser, GCT gate and the VQ-VAE-2 container."""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist

from aioir.nn import GCT, VQVAE2, EMAVectorQuantizer


def _codes_for(q: EMAVectorQuantizer, z: torch.Tensor) -> torch.Tensor:
    flat = z.permute(0, 2, 3, 1).reshape(-1, q.dim)
    return torch.cdist(flat, q.embed.t()).argmin(1)


def test_nearest_codeword_and_straight_through() -> None:
    torch.manual_seed(0)
    q = EMAVectorQuantizer(4, 16).eval()
    z = torch.randn(2, 4, 3, 5, requires_grad=True)
    out, diff, idx = q(z)
    assert out.shape == z.shape and idx.shape == (2, 3, 5)
    torch.testing.assert_close(idx.flatten(), _codes_for(q, z.detach()))
    expected = q.embed.t()[idx].permute(0, 3, 1, 2)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(diff, (expected - z).pow(2).mean())
    w = torch.randn_like(z)
    (out * w).sum().backward()
    torch.testing.assert_close(z.grad, w)  # straight-through: identity Jacobian


def test_ema_updates_only_in_train_mode() -> None:
    torch.manual_seed(0)
    q = EMAVectorQuantizer(4, 8)
    before = {k: v.clone() for k, v in q.state_dict().items()}
    z = torch.randn(2, 4, 4, 4)
    q.eval()
    q(z)
    for k, v in q.state_dict().items():
        assert torch.equal(v, before[k]), k
    q.train()
    _, _, idx = q(z)
    # one EMA step, by hand
    flat = z.permute(0, 2, 3, 1).reshape(-1, 4)
    onehot = torch.nn.functional.one_hot(idx.flatten(), 8).float()
    size = 0.99 * before["cluster_size"] + 0.01 * onehot.sum(0)
    avg = 0.99 * before["embed_avg"] + 0.01 * flat.t() @ onehot
    n = size.sum()
    smoothed = (size + 1e-5) / (n + 8 * 1e-5) * n
    torch.testing.assert_close(q.cluster_size, size)
    torch.testing.assert_close(q.embed_avg, avg)
    torch.testing.assert_close(q.embed, avg / smoothed)


def test_ema_sync_under_single_process_group(tmp_path) -> None:
    dist.init_process_group("gloo", init_method=f"file://{tmp_path}/pg", rank=0, world_size=1)
    try:
        torch.manual_seed(0)
        a = EMAVectorQuantizer(4, 8, sync_distributed=True)
        b = EMAVectorQuantizer(4, 8)
        b.load_state_dict(a.state_dict())
        z = torch.randn(1, 4, 4, 4)
        a(z)
        b(z)
        torch.testing.assert_close(a.embed, b.embed)
    finally:
        dist.destroy_process_group()


def test_gct_identity_at_init_and_l2_formula() -> None:
    torch.manual_seed(0)
    gct = GCT(6)
    x = torch.randn(2, 6, 5, 4)
    torch.testing.assert_close(gct(x), x)
    with torch.no_grad():
        for p in (gct.alpha, gct.gamma, gct.beta):
            p.normal_()
    s = (x.pow(2).sum((2, 3), keepdim=True) + 1e-5).sqrt() * gct.alpha
    n = gct.gamma / (s.pow(2).mean(1, keepdim=True) + 1e-5).sqrt()
    torch.testing.assert_close(gct(x), x * (1 + torch.tanh(s * n + gct.beta)))
    with pytest.raises(ValueError):
        GCT(4, mode="l3")


def test_vqvae2_shapes_and_optional_decoder() -> None:
    vq = VQVAE2(channel=16, n_res_block=1, n_res_channel=8, embed_dim=8, n_embed=16)
    x = torch.rand(1, 3, 32, 24)
    qt, qb, diff, it, ib = vq.encode(x)
    assert qt.shape == (1, 8, 4, 3) and qb.shape == (1, 8, 8, 6)
    assert it.shape == (1, 4, 3) and ib.shape == (1, 8, 6) and diff.ndim == 0
    recon, _ = vq(x)
    assert recon.shape == x.shape
    lean = VQVAE2(channel=16, n_res_block=1, n_res_channel=8, embed_dim=8, n_embed=16,
                  image_decoder=False)  # fmt: skip
    keys = set(vq.state_dict()) - set(lean.state_dict())
    assert keys and all(k.split(".")[0] in {"upsample_t", "dec", "out_conv"} for k in keys)
    with pytest.raises(RuntimeError):
        lean.decode(qt, qb)
