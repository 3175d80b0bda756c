"""Hierarchical VQ-VAE (VQ-VAE-2, Razavi et al. 2019) with EMA codebooks.

Two levels: a bottom encoder at stride 4 and a top encoder at stride 8 (relative to the input);
the top code is decoded back to stride 4 and concatenated with the bottom features before the
bottom quantiser. Module names (``enc_b``, ``enc_t``, ``quantize_conv_t``, ``quantize_t``,
``dec_t``, ``quantize_conv_b``, ``quantize_b``, ``upsample_t``, ``dec``, ``out_conv``) and the
``blocks.<i>`` / ``conv.<i>`` layout follow the widely used PyTorch port, so its checkpoints load.

``image_decoder=False`` omits the image decoder (``upsample_t``, ``dec``, ``out_conv``) for
models that only use the codes; input sides must be multiples of 8.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from aioir.nn.quantize import EMAVectorQuantizer

__all__ = ["VQVAE2", "VQDecoder", "VQEncoder", "VQResBlock"]


class VQResBlock(nn.Module):
    """``x + 1×1(ReLU(3×3(ReLU(x))))`` (``conv.1`` is the 3×3, ``conv.3`` the 1×1)."""

    def __init__(self, in_channel: int, channel: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(in_channel, channel, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channel, in_channel, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv(x)


class VQEncoder(nn.Module):
    """Strided 4×4 convolutions (stride 4 or 2 overall), a 3×3, residual blocks, ReLU."""

    def __init__(
        self, in_channel: int, channel: int, n_res_block: int, n_res_channel: int, stride: int
    ) -> None:
        super().__init__()
        if stride == 4:
            layers: list[nn.Module] = [
                nn.Conv2d(in_channel, channel // 2, 4, stride=2, padding=1),
                nn.ReLU(inplace=True),
                nn.Conv2d(channel // 2, channel, 4, stride=2, padding=1),
                nn.ReLU(inplace=True),
                nn.Conv2d(channel, channel, 3, padding=1),
            ]
        elif stride == 2:
            layers = [
                nn.Conv2d(in_channel, channel // 2, 4, stride=2, padding=1),
                nn.ReLU(inplace=True),
                nn.Conv2d(channel // 2, channel, 3, padding=1),
            ]
        else:
            raise ValueError(f"stride must be 2 or 4, got {stride}")
        layers += [VQResBlock(channel, n_res_channel) for _ in range(n_res_block)]
        layers.append(nn.ReLU(inplace=True))
        self.blocks = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.blocks(x)


class VQDecoder(nn.Module):
    """3×3, residual blocks, ReLU, then one or two 4×4 stride-2 transposed convolutions."""

    def __init__(
        self,
        in_channel: int,
        out_channel: int,
        channel: int,
        n_res_block: int,
        n_res_channel: int,
        stride: int,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channel, channel, 3, padding=1)]
        layers += [VQResBlock(channel, n_res_channel) for _ in range(n_res_block)]
        layers.append(nn.ReLU(inplace=True))
        if stride == 4:
            layers += [
                nn.ConvTranspose2d(channel, channel // 2, 4, stride=2, padding=1),
                nn.ReLU(inplace=True),
                nn.ConvTranspose2d(channel // 2, out_channel, 4, stride=2, padding=1),
            ]
        elif stride == 2:
            layers.append(nn.ConvTranspose2d(channel, out_channel, 4, stride=2, padding=1))
        else:
            raise ValueError(f"stride must be 2 or 4, got {stride}")
        self.blocks = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.blocks(x)


class VQVAE2(nn.Module):
    """Two-level VQ-VAE with EMA quantisers.

    Args:
        in_channel: image channels.
        channel: encoder/decoder width (128).
        n_res_block, n_res_channel: residual blocks per stage and their hidden width (3, 32).
        embed_dim: code dimension (64).
        n_embed: codewords per codebook (512).
        decay: EMA decay of both codebooks (0.99).
        decoder_out_channel: channels before the output 3×3 (16).
        image_decoder: build ``upsample_t``/``dec``/``out_conv`` (the reconstruction path).
        input_mean: per-channel mean subtracted from the input (not a state-dict entry).
    """

    mean: Tensor

    def __init__(
        self,
        in_channel: int = 3,
        channel: int = 128,
        n_res_block: int = 3,
        n_res_channel: int = 32,
        embed_dim: int = 64,
        n_embed: int = 512,
        decay: float = 0.99,
        decoder_out_channel: int = 16,
        image_decoder: bool = True,
        input_mean: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        mean = torch.tensor(input_mean if input_mean is not None else [0.0] * in_channel)
        self.register_buffer("mean", mean.view(1, -1, 1, 1), persistent=False)
        self.enc_b = VQEncoder(in_channel, channel, n_res_block, n_res_channel, stride=4)
        self.enc_t = VQEncoder(channel, channel, n_res_block, n_res_channel, stride=2)
        self.quantize_conv_t = nn.Conv2d(channel, embed_dim, 1)
        self.quantize_t = EMAVectorQuantizer(embed_dim, n_embed, decay)
        self.dec_t = VQDecoder(embed_dim, embed_dim, channel, n_res_block, n_res_channel, stride=2)
        self.quantize_conv_b = nn.Conv2d(embed_dim + channel, embed_dim, 1)
        self.quantize_b = EMAVectorQuantizer(embed_dim, n_embed, decay)
        self.has_image_decoder = image_decoder
        if image_decoder:
            self.upsample_t = nn.ConvTranspose2d(embed_dim, embed_dim, 4, stride=2, padding=1)
            self.dec = VQDecoder(
                embed_dim * 2, decoder_out_channel, channel, n_res_block, n_res_channel, stride=4
            )
            self.out_conv = nn.Conv2d(decoder_out_channel, in_channel, 3, padding=1)

    def encode(
        self, x: Tensor, project_b: Callable[[Tensor], Tensor] | None = None
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Quantise an image: ``(quant_t, quant_b, diff, id_t, id_b)``.

        ``quant_t`` is ``D×H/8×W/8``, ``quant_b`` is ``D×H/4×W/4``; ``diff`` is the sum of the
        two commitment terms. ``project_b`` (optional) maps the bottom pre-quantisation features
        before they are quantised (:meth:`bottom_features`).
        """
        quant_t, diff_t, id_t, z_b = self._encode_to_bottom(x, project_b)
        quant_b, diff_b, id_b = self.quantize_b(z_b)
        return quant_t, quant_b, diff_t + diff_b, id_t, id_b

    def bottom_features(
        self, x: Tensor, project_b: Callable[[Tensor], Tensor] | None = None
    ) -> Tensor:
        """The bottom pre-quantisation features ``z_b`` (``D×H/4×W/4``, after ``project_b``
        when given): what :attr:`quantize_b` assigns to codewords."""
        return self._encode_to_bottom(x, project_b)[3]

    def _encode_to_bottom(
        self, x: Tensor, project_b: Callable[[Tensor], Tensor] | None
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        enc_b = self.enc_b(x - self.mean)
        enc_t = self.enc_t(enc_b)
        quant_t, diff_t, id_t = self.quantize_t(self.quantize_conv_t(enc_t))
        enc_b = torch.cat([self.dec_t(quant_t), enc_b], dim=1)
        z_b = self.quantize_conv_b(enc_b)
        if project_b is not None:
            z_b = project_b(z_b)
        return quant_t, diff_t, id_t, z_b

    def decode(self, quant_t: Tensor, quant_b: Tensor) -> Tensor:
        """Reconstruct the image from the two code maps."""
        if not self.has_image_decoder:
            raise RuntimeError("this VQVAE2 was built with image_decoder=False")
        dec = self.dec(torch.cat([self.upsample_t(quant_t), quant_b], dim=1))
        return self.out_conv(dec) + self.mean

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(reconstruction, diff)``."""
        quant_t, quant_b, diff, _, _ = self.encode(x)
        return self.decode(quant_t, quant_b), diff
