"""A plain residual convolutional restorer (:class:`ResidualCNN`), DnCNN's shape without its
batch normalisation.

``out = x + conv(ReLU(conv(… ReLU(conv(x)))))``: ``depth`` 3×3 convolutions of ``width``
channels, ReLU between them, the last one predicting the residual. Zhang et al.'s DnCNN
("Beyond a Gaussian denoiser", 2017) is this stack with batch normalisation in the hidden
layers; it is left out here (with Adam and small CPU batches it only slows training, and an
inference model without it exports as plain convolutions), so no preset carries DnCNN's name.

Why it is here: on this project's CPU a 10-layer, 48-channel stack learns blind Gaussian
denoising an order of magnitude faster per CPU-minute than a U-Net restorer (the default
model's noise expert since v4, and v5's haze expert; :mod:`aioir.models.filter_bank`). Any input size (no padding needed).
"""

from __future__ import annotations

from torch import Tensor, nn

from aioir.models.registry import Preset, register_presets

__all__ = ["RESIDUAL_CNN_PRESETS", "ResidualCNN", "conv_relu_stack"]


def conv_relu_stack(
    in_channels: int, out_channels: int, width: int, depth: int, zero_init_output: bool = True
) -> nn.Sequential:
    """``depth`` 3×3 convolutions (``in_channels`` → ``width`` … → ``out_channels``), ReLU
    between them, He-initialised; the last one starts at zero when ``zero_init_output`` (a
    residual branch that begins as nothing)."""
    if depth < 2:
        raise ValueError(f"depth must be at least 2, got {depth}")
    if width < 1:
        raise ValueError(f"width must be at least 1, got {width}")
    layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(True)]
    for _ in range(depth - 2):
        layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU(True)]
    output = nn.Conv2d(width, out_channels, 3, padding=1)
    # He initialisation for the ReLU layers: with PyTorch's default (uniform, gain 1/√3) the
    # activations shrink ≈ 2.5× per layer, the last features barely vary and, with a zero
    # output layer, no gradient reaches the body (2,000 steps learnt nothing)
    for conv in layers:
        if isinstance(conv, nn.Conv2d):
            nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
            nn.init.zeros_(conv.bias)
    if zero_init_output:
        nn.init.zeros_(output.weight)
        nn.init.zeros_(output.bias)
    return nn.Sequential(*layers, output)


class ResidualCNN(nn.Module):
    """``depth`` 3×3 convolutions (ReLU between) predicting a residual added to the input.

    Args:
        in_channels: channels of the input and output image.
        width: channels of the hidden layers.
        depth: number of convolutions (≥ 2).
        zero_init_output: start the last convolution at zero, so the untrained network is the
            identity (a restorer's natural starting point).
    """

    size_multiple: int = 1

    def __init__(
        self, in_channels: int = 3, width: int = 48, depth: int = 10, zero_init_output: bool = True
    ) -> None:
        super().__init__()
        self.body = conv_relu_stack(in_channels, in_channels, width, depth, zero_init_output)

    def forward(self, x: Tensor) -> Tensor:
        """Restore ``x`` (B×C×H×W, any size); returns the same shape."""
        return x + self.body(x)


RESIDUAL_CNN_PRESETS: dict[str, Preset] = {
    "small": Preset(
        {"width": 48, "depth": 10},
        parameters=168_915,
        description="plain residual CNN, 10 conv layers × 48 channels (CPU-fast denoiser; the "
        "v4 default model's noise expert)",
        inference_bytes_per_pixel=333,
    ),
    "tiny": Preset(
        {"width": 8, "depth": 3},
        parameters=1_027,
        description="plain residual CNN, 3 conv layers × 8 channels (tests)",
    ),
}

register_presets("residual-cnn", ResidualCNN, RESIDUAL_CNN_PRESETS)
