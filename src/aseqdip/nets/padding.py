"""Any image size: pad to a multiple of 2**depth before the network, crop back after."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PadToMultiple(nn.Module):
    """Wrap a network that needs H and W divisible by ``multiple``.

    Images smaller than ``2 * multiple`` are padded up to it, so the coarsest level keeps at least
    2x2 pixels for BatchNorm's statistics. Reflection padding (replicate when the image is too small to reflect) keeps the border
    statistics close to the image's own, so the padded rows do not bias BatchNorm.
    """

    def __init__(self, body: nn.Module, multiple: int) -> None:
        super().__init__()
        self.body = body
        self.multiple = multiple

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph = max((-h) % self.multiple, 2 * self.multiple - h)
        pw = max((-w) % self.multiple, 2 * self.multiple - w)
        if ph == 0 and pw == 0:
            return self.body(x)
        pad = (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)
        mode = "reflect" if min(h, w) > max(ph, pw) else "replicate"
        out = self.body(F.pad(x, pad, mode=mode))
        return out[..., pad[2] : pad[2] + h, pad[0] : pad[0] + w]
