"""Activation-free blocks of NAFNet (Chen et al., "Simple Baselines for Image Restoration",
ECCV 2022): convolutions, channel LayerNorm and gates only — cheap on a CPU.

:class:`NAFBlock` is two residual halves, each scaled by a learnable per-channel factor that
starts at zero (so a fresh block is the identity):

* spatial half: ``y = x + β ⊙ 1×1(SCA(SimpleGate(DW3×3(1×1(LN(x))))))`` — the first 1×1 widens
  to ``dw_expand·C``, the gate halves it, :class:`~aioir.nn.gates.SimplifiedChannelAttention`
  rescales the channels, the last 1×1 returns to ``C``;
* channel half: ``y + γ ⊙ 1×1(SimpleGate(1×1(LN(y))))`` (hidden ``ffn_expand·C``, gated to
  half of it).

Block-level attribute names follow the authors' (``norm1``, ``conv1``–``conv5``, ``sca``,
``norm2``, ``beta``, ``gamma``); below them the keys are this package's (``norm1.body.weight``,
``sca.conv.weight``), so the authors' checkpoints would need a key map. Parameters at the
defaults: ``7C² + 33C``.
"""

from __future__ import annotations

from typing import TypedDict, Unpack

import torch
from torch import Tensor, nn

from aioir.nn.gates import SimpleGate, SimplifiedChannelAttention
from aioir.nn.norm import LayerNorm2d

__all__ = ["NAFBlock", "NAFBlockOptions", "make_naf_blocks"]


class NAFBlockOptions(TypedDict, total=False):
    """:class:`NAFBlock`'s keywords after ``channels``."""

    dw_expand: int
    ffn_expand: int
    bias: bool
    eps: float


class NAFBlock(nn.Module):
    """A NAFNet block of width ``channels`` (see the module docstring).

    Args:
        channels: input and output channels ``C``.
        dw_expand: width of the depthwise convolution, in units of ``C`` (2).
        ffn_expand: hidden width of the channel half, in units of ``C`` (2).
        bias: biases in the convolutions (the authors': ``True``).
        eps: LayerNorm epsilon (the authors': ``1e-6``).
    """

    def __init__(
        self,
        channels: int,
        dw_expand: int = 2,
        ffn_expand: int = 2,
        bias: bool = True,
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        dw, ffn = channels * dw_expand, channels * ffn_expand
        if dw % 2 or ffn % 2:
            raise ValueError("dw_expand·channels and ffn_expand·channels must be even")
        self.norm1 = LayerNorm2d(channels, eps=eps)
        self.conv1 = nn.Conv2d(channels, dw, kernel_size=1, bias=bias)
        self.conv2 = nn.Conv2d(dw, dw, kernel_size=3, padding=1, groups=dw, bias=bias)
        self.sg = SimpleGate()
        self.sca = SimplifiedChannelAttention(dw // 2, bias)
        self.conv3 = nn.Conv2d(dw // 2, channels, kernel_size=1, bias=bias)
        self.norm2 = LayerNorm2d(channels, eps=eps)
        self.conv4 = nn.Conv2d(channels, ffn, kernel_size=1, bias=bias)
        self.conv5 = nn.Conv2d(ffn // 2, channels, kernel_size=1, bias=bias)
        self.beta = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        y = self.sca(self.sg(self.conv2(self.conv1(self.norm1(x)))))
        x = x + self.conv3(y) * self.beta
        y = self.conv5(self.sg(self.conv4(self.norm2(x))))
        return x + y * self.gamma


def make_naf_blocks(n: int, channels: int, **options: Unpack[NAFBlockOptions]) -> nn.Sequential:
    """``n`` stacked :class:`NAFBlock` of width ``channels``."""
    return nn.Sequential(*[NAFBlock(channels, **options) for _ in range(n)])
