"""The U-Net of Jansson et al. (ISMIR 2017): a spectrogram patch in, a soft mask out.

Six 5x5 stride-2 convolutions (16 ... 512 channels, batch norm, leaky ReLU 0.2) encode a
(1, bins, frames) magnitude patch; six 5x5 stride-2 transposed convolutions (batch norm,
ReLU, dropout 0.5 on the first three) decode it, each concatenated with the encoder output
of the same size; the last one ends in a sigmoid. ``bins`` and ``frames`` must be
multiples of 64. Each patch is divided by its maximum first, so the mask does not depend
on the input's level.
"""

from __future__ import annotations

import torch
from torch import nn

#: Channels of the six encoder levels.
ENCODER_CHANNELS = (16, 32, 64, 128, 256, 512)
#: Side of the square convolution kernels.
KERNEL = 5
#: Each level halves both axes, so patch sides must be multiples of this.
PATCH_MULTIPLE = 2 ** len(ENCODER_CHANNELS)


def _down(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, KERNEL, stride=2, padding=KERNEL // 2),
        nn.BatchNorm2d(out_channels),
        nn.LeakyReLU(0.2),
    )


def _up(in_channels: int, out_channels: int, dropout: bool) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.ConvTranspose2d(in_channels, out_channels, KERNEL, stride=2, padding=KERNEL // 2, output_padding=1),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
    ]
    if dropout:
        layers.append(nn.Dropout(0.5))
    return nn.Sequential(*layers)


class UNet(nn.Module):
    """Maps magnitude patches (batch, 1, bins, frames) to masks in [0, 1] of the same shape."""

    def __init__(self) -> None:
        super().__init__()
        channels = (1, *ENCODER_CHANNELS)
        self.encoder = nn.ModuleList(_down(channels[i], channels[i + 1]) for i in range(len(ENCODER_CHANNELS)))
        decoder: list[nn.Module] = []
        for level in range(len(ENCODER_CHANNELS) - 1, 0, -1):
            # The deepest level has no skip connection; the others see their twin concatenated.
            in_channels = channels[level + 1] * (1 if level == len(ENCODER_CHANNELS) - 1 else 2)
            decoder.append(_up(in_channels, channels[level], dropout=len(decoder) < 3))
        self.decoder = nn.ModuleList(decoder)
        self.output = nn.ConvTranspose2d(2 * channels[1], 1, KERNEL, stride=2, padding=KERNEL // 2, output_padding=1)

    def forward(self, magnitude: torch.Tensor) -> torch.Tensor:
        skips = []
        x = magnitude / magnitude.amax(dim=(2, 3), keepdim=True).clamp_min(1e-8)
        for layer in self.encoder:
            x = layer(x)
            skips.append(x)
        skips.pop()  # the deepest output is the decoder's input, not a skip
        for layer in self.decoder:
            x = torch.cat([layer(x), skips.pop()], dim=1)
        return torch.sigmoid(self.output(x))
