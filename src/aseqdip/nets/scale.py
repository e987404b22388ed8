"""A network whose output is rescaled once, at its first call, to a norm the caller chooses.

Why: a freshly initialised U-Net (weights N(0, 0.02), as the aSeqDIP authors initialise) outputs an
image whose scale has nothing to do with the data's. The authors' MRI and CT scripts rescale the *data*
by ||f(z_0)|| / ||x_ref|| so that the first output is at the data's scale; dividing the output by the
same factor instead is the same problem in the data's own units, so the losses, the input updates and
the returned image need no unscaling. The factor is measured once, without gradient, and kept in a
buffer, so a checkpoint restores it.
"""

from __future__ import annotations

import torch
from torch import nn


class MatchedScale(nn.Module):
    """``net`` times a constant: ``target_norm / ||net(z)||`` for the first input ``z`` it sees."""

    def __init__(self, net: nn.Module, target_norm: float) -> None:
        super().__init__()
        if not target_norm > 0:
            raise ValueError(f"the target norm of the output must be positive, got {target_norm}")
        self.net = net
        self.target_norm = float(target_norm)
        self.register_buffer("scale", torch.zeros(()))  # 0: not measured yet

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out = self.net(z)
        if not bool(self.scale):
            with torch.no_grad():
                norm = torch.linalg.vector_norm(out.detach().float())
                self.scale.fill_(self.target_norm / float(norm.clamp_min(1e-12)))
        return out * self.scale.to(out.dtype)
