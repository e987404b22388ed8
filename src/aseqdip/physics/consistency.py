"""Data-consistency steps, dispatched on the physics type: x -> x corrected to agree with y where y was measured.

aSeqDIP's optional data-consistent input update (``ASeqDIP(dc_update=True)``) applies this to f(z)
before it becomes the next input, and its data-consistent output (``consistent_output=True``) to the
returned image. An operator module registers its step with ``data_consistent.register(OperatorType)``;
operators without one are refused up front. For inpainting the step keeps the measured pixels of y and
the hole of x (the composite the aSeqDIP authors save); for single-coil MRI it is the exact projection;
for multi-coil MRI it replaces the sampled lines of each coil's k-space and combines the coils again (see
``physics.mri.mri_data_consistent``).
"""

from __future__ import annotations

from functools import singledispatch
from typing import Any

import torch


@singledispatch
def data_consistent(physics: Any, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Correct ``x`` with the measurements ``y`` (no step is defined for this operator)."""
    raise NotImplementedError(f"no data-consistency step is defined for {type(physics).__name__}")


def has_data_consistency(physics: Any) -> bool:
    """True when a data-consistency step is registered for ``physics``' type."""
    return data_consistent.dispatch(type(physics)) is not data_consistent.dispatch(object)


def composite(physics: Any, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Inpainting: the measured pixels from ``y``, the rest from ``x`` (mask M: M y + (1 - M) x).

    deepinv's ``Inpainting`` measures y = M x (+ noise), so this is x + A^H (y - A x) for a 0/1 mask.
    """
    mask = physics.mask.to(x.device)
    return mask * y + (1 - mask) * x


def _register_deepinv() -> None:
    import deepinv as dinv

    from .mri import mri_data_consistent

    for cls in (dinv.physics.MRI, dinv.physics.MultiCoilMRI):
        data_consistent.register(cls, mri_data_consistent)
    data_consistent.register(dinv.physics.Inpainting, composite)


_register_deepinv()
