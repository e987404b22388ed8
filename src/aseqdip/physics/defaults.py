"""Per-operator defaults: the first image estimate (the input aSeqDIP starts from) and the network.

Both dispatch on the physics type, so a task module can register its operator without touching the
methods (e.g. the CT module registers FBP for ``Tomography``).
"""

from __future__ import annotations

from functools import singledispatch
from typing import Any

import torch


@singledispatch
def first_estimate(physics: Any, y: torch.Tensor) -> torch.Tensor:
    """A cheap image-domain estimate from ``y``: y itself when it is image-shaped, else A^H y.

    This is z_0 of aSeqDIP (the paper uses y for denoising, inpainting and deblurring, A^H y for MRI
    and CT) and the reference point for the measurement's own PSNR.
    """
    if hasattr(physics, "A_adjoint"):
        try:
            adj = physics.A_adjoint(y)
        except NotImplementedError:
            adj = None
        if adj is not None:
            return y if (adj.shape == y.shape and not torch.is_complex(y)) else adj
    return y


@singledispatch
def default_network(physics: Any) -> str:
    """Name of the network the paper's code uses for this kind of operator."""
    return "shallow_unet"


def _register_deepinv_defaults() -> None:
    import deepinv as dinv

    default_network.register(dinv.physics.Inpainting, lambda physics: "skip")
    for name in ("MultiCoilMRI", "MRI", "Tomography"):
        cls = getattr(dinv.physics, name, None)
        if cls is not None:
            default_network.register(cls, lambda physics: "medium_unet")


_register_deepinv_defaults()
