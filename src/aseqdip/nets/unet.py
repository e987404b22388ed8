"""The U-Nets of the aSeqDIP authors' code: a medium one (MRI, CT) and a shallow one (denoising, deblurring).

Both are the classic bilinear U-Net: each block is two [3x3 conv with bias, BatchNorm, ReLU],
max-pool down, bilinear x2 up (align_corners=True), the skip concatenated, a final 1x1 conv and no
output activation. With bilinear upsampling the deepest encoder block keeps the width of the one above
it (the "factor 2" of the reference implementation), and each decoder block narrows its input by half
in the middle convolution.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .init import init_weights
from .padding import PadToMultiple


def double_conv(c_in: int, c_out: int, c_mid: int | None = None) -> nn.Sequential:
    c_mid = c_out if c_mid is None else c_mid
    return nn.Sequential(
        nn.Conv2d(c_in, c_mid, 3, padding=1, bias=True),
        nn.BatchNorm2d(c_mid),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_mid, c_out, 3, padding=1, bias=True),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class _Up(nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
        self.conv = double_conv(c_in, c_out, c_in // 2)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([skip, self.up(x)], dim=1))


class UNetBody(nn.Module):
    """Bilinear U-Net on inputs whose size is a multiple of 2**len(widths)-1 (see :class:`UNet`).

    ``widths`` are the encoder widths before the bottleneck, e.g. (64, 128, 256) for the medium net:
    the bottleneck then has width 256 and the decoder widths are 128, 64, 64.
    """

    def __init__(self, in_channels: int, out_channels: int, widths: Sequence[int]) -> None:
        super().__init__()
        widths = list(widths)
        self.inc = double_conv(in_channels, widths[0])
        self.downs = nn.ModuleList()
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            self.downs.append(nn.Sequential(nn.MaxPool2d(2), double_conv(c_in, c_out)))
        # bottleneck: same width as the last encoder level (bilinear "factor 2")
        self.downs.append(nn.Sequential(nn.MaxPool2d(2), double_conv(widths[-1], widths[-1])))
        self.ups = nn.ModuleList()
        deep = widths[-1]
        for level in reversed(range(len(widths))):
            skip = widths[level]
            c_out = widths[level - 1] if level > 0 else widths[0]
            self.ups.append(_Up(skip + deep, c_out))
            deep = c_out
        self.outc = nn.Conv2d(widths[0], out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.inc(x)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        h = skips.pop()
        for up in self.ups:
            h = up(h, skips.pop())
        return self.outc(h)


class UNet(PadToMultiple):
    """A bilinear U-Net that accepts any image size and channel count."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        widths: Sequence[int],
        generator: torch.Generator | None = None,
    ) -> None:
        body = UNetBody(in_channels, out_channels, widths)
        super().__init__(body, multiple=2 ** len(widths))
        init_weights(self, generator)


def medium_unet(in_channels: int = 1, out_channels: int | None = None, generator: torch.Generator | None = None) -> UNet:
    """3 poolings, widths 64-128-256-256, decoder 128-64-64 (MRI and CT in the paper)."""
    return UNet(in_channels, out_channels or in_channels, (64, 128, 256), generator)


def shallow_unet(in_channels: int = 3, out_channels: int | None = None, generator: torch.Generator | None = None) -> UNet:
    """2 poolings, widths 64-128-128, decoder 64-64 (denoising and deblurring in the paper)."""
    return UNet(in_channels, out_channels or in_channels, (64, 128), generator)
