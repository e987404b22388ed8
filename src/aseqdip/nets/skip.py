"""The encoder-decoder "skip" network of Ulyanov et al.'s Deep Image Prior (used for inpainting).

Each scale: a strided 3x3 conv down, a 3x3 conv, the deeper scales, nearest x2 up, then the
concatenation with a 1x1 skip branch, and two convs (3x3 then 1x1). Reflection padding, BatchNorm,
LeakyReLU(0.2) throughout and a sigmoid output, as in the DIP reference code.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .init import init_weights
from .padding import PadToMultiple


def _conv(c_in: int, c_out: int, kernel: int, stride: int = 1) -> nn.Sequential:
    pad = (kernel - 1) // 2
    layers: list[nn.Module] = []
    if pad:
        layers.append(nn.ReflectionPad2d(pad))
    layers.append(nn.Conv2d(c_in, c_out, kernel, stride=stride, bias=True))
    return nn.Sequential(*layers)


def _bn_act(c: int) -> list[nn.Module]:
    return [nn.BatchNorm2d(c), nn.LeakyReLU(0.2, inplace=True)]


class _Scale(nn.Module):
    """One scale of the skip network; ``deeper`` is the rest of the network below it (or None)."""

    def __init__(self, c_in: int, down: int, up: int, skip: int, deeper: nn.Module | None, deeper_out: int) -> None:
        super().__init__()
        self.skip = nn.Sequential(_conv(c_in, skip, 1), *_bn_act(skip)) if skip else None
        main: list[nn.Module] = [_conv(c_in, down, 3, stride=2), *_bn_act(down), _conv(down, down, 3), *_bn_act(down)]
        if deeper is not None:
            main.append(deeper)
        main.append(nn.Upsample(scale_factor=2, mode="nearest"))
        self.main = nn.Sequential(*main)
        merged = skip + (deeper_out if deeper is not None else down)
        self.merge = nn.Sequential(
            nn.BatchNorm2d(merged),
            _conv(merged, up, 3), *_bn_act(up),
            _conv(up, up, 1), *_bn_act(up),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        deep = self.main(x)
        if self.skip is not None:
            deep = torch.cat([self.skip(x), deep], dim=1)
        return self.merge(deep)


class SkipNet(PadToMultiple):
    """DIP skip network for any image size and channel count."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        down: Sequence[int] = (128,) * 5,
        up: Sequence[int] = (128,) * 5,
        skip: Sequence[int] = (4,) * 5,
        sigmoid: bool = True,
        generator: torch.Generator | None = None,
    ) -> None:
        if not len(down) == len(up) == len(skip):
            raise ValueError("down, up and skip need one entry per scale")
        deeper: nn.Module | None = None
        deeper_out = 0
        for level in reversed(range(len(down))):
            c_in = in_channels if level == 0 else down[level - 1]
            deeper = _Scale(c_in, down[level], up[level], skip[level], deeper, deeper_out)
            deeper_out = up[level]
        head: list[nn.Module] = [deeper, nn.Conv2d(up[0], out_channels, 1)]
        if sigmoid:
            head.append(nn.Sigmoid())
        super().__init__(nn.Sequential(*head), multiple=2 ** len(down))
        init_weights(self, generator)


def skip_net(in_channels: int = 3, out_channels: int | None = None, generator: torch.Generator | None = None) -> SkipNet:
    """5 scales of 128 channels with 4-channel skips, as in DIP's inpainting experiments."""
    return SkipNet(in_channels, out_channels or in_channels, generator=generator)
