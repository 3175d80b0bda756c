"""EMA vector quantiser (VQ-VAE / VQ-VAE-2 style, codebook updated by exponential moving averages).

The codebook is a *buffer*, not a parameter: gradients never reach it. In training mode every
forward pass updates it from the batch assignments::

    N_k ← γ N_k + (1-γ) n_k            (``cluster_size``)
    m_k ← γ m_k + (1-γ) Σ_{p→k} z_p     (``embed_avg``)
    c_k = m_k / ((N_k + ε) / (N + Kε) · N)   (``embed``, Laplace-smoothed counts)

In eval mode the buffers are left untouched. Gradients pass straight through
(``q = z + sg(c - z)``). Buffer names and shapes (``embed``: D×K, ``cluster_size``: K,
``embed_avg``: D×K) follow the reference VQ-VAE-2 port so checkpoints load unchanged.

Under DDP set ``sync_distributed=True`` to all-reduce the batch statistics (counts and sums)
before the EMA step, so every rank keeps the same codebook.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["EMAVectorQuantizer"]


class EMAVectorQuantizer(nn.Module):
    """Nearest-codeword quantisation of ``B×D×H×W`` maps with an EMA-updated codebook.

    Args:
        dim: code dimension ``D`` (the channel axis of the input).
        n_embed: number of codewords ``K``.
        decay: EMA decay ``γ`` (0.99).
        eps: Laplace smoothing ``ε`` (1e-5).
        sync_distributed: all-reduce batch statistics across ranks in training mode.
    """

    embed: Tensor
    cluster_size: Tensor
    embed_avg: Tensor

    def __init__(
        self,
        dim: int,
        n_embed: int,
        decay: float = 0.99,
        eps: float = 1e-5,
        sync_distributed: bool = False,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.n_embed = n_embed
        self.decay = decay
        self.eps = eps
        self.sync_distributed = sync_distributed
        embed = torch.randn(dim, n_embed)
        self.register_buffer("embed", embed)
        self.register_buffer("cluster_size", torch.zeros(n_embed))
        self.register_buffer("embed_avg", embed.clone())

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Quantise ``z`` (B×D×H×W).

        Returns ``(quantized, diff, indices)``: the straight-through quantised map (B×D×H×W),
        the mean squared distance to the chosen codewords (a commitment term; unused by UDAIR)
        and the codeword indices (B×H×W).
        """
        b, d, h, w = z.shape
        flat = z.detach().permute(0, 2, 3, 1).reshape(-1, d)
        dist_sq = (
            flat.pow(2).sum(1, keepdim=True)
            - 2 * flat @ self.embed
            + self.embed.pow(2).sum(0, keepdim=True)
        )
        indices = dist_sq.argmin(dim=1)
        codes = F.embedding(indices, self.embed.t())
        if self.training:
            self._ema_update(flat, indices)
        codes = codes.view(b, h, w, d).permute(0, 3, 1, 2)
        diff = (codes.detach() - z).pow(2).mean()
        quantized = z + (codes - z).detach()
        return quantized, diff, indices.view(b, h, w)

    @torch.no_grad()
    def _ema_update(self, flat: Tensor, indices: Tensor) -> None:
        onehot = F.one_hot(indices, self.n_embed).type(flat.dtype)
        counts = onehot.sum(0)
        sums = flat.t() @ onehot
        if self.sync_distributed and dist.is_available() and dist.is_initialized():
            dist.all_reduce(counts)
            dist.all_reduce(sums)
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.embed_avg.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        n = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.eps) / (n + self.n_embed * self.eps) * n
        self.embed.copy_(self.embed_avg / smoothed.unsqueeze(0))

    def embed_code(self, indices: Tensor) -> Tensor:
        """Codewords for an index map (…) → (…×D), channels last."""
        return F.embedding(indices, self.embed.t())
