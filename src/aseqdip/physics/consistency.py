"""Data-consistency steps, dispatched on the physics type: x -> x corrected to agree with y where y was measured.

aSeqDIP's optional data-consistent input update (``ASeqDIP(dc_update=True)``) applies this to f(z)
before it becomes the next input. An operator module registers its step with
``data_consistent.register(OperatorType)``; operators without one are refused up front. For single-coil
MRI the step is the exact projection; for multi-coil MRI it replaces the sampled lines of each coil's
k-space and combines the coils again (see ``physics.mri.mri_data_consistent``).
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


def _register_deepinv() -> None:
    import deepinv as dinv

    from .mri import mri_data_consistent

    for cls in (dinv.physics.MRI, dinv.physics.MultiCoilMRI):
        data_consistent.register(cls, mri_data_consistent)


_register_deepinv()
