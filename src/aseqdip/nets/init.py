"""Weight initialisation shared by every network, as in the aSeqDIP authors' code."""

from __future__ import annotations

import torch
from torch import nn


def init_weights(net: nn.Module, generator: torch.Generator | None = None, std: float = 0.02) -> nn.Module:
    """Conv weights ~ N(0, std), zero bias; BatchNorm weight ~ N(1, std), zero bias.

    The generator makes the initialisation reproducible without touching the global RNG.
    """
    for module in net.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(module.weight, 0.0, std, generator=generator)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.normal_(module.weight, 1.0, std, generator=generator)
            nn.init.zeros_(module.bias)
    return net
