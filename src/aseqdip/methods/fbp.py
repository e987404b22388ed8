"""Filtered back-projection: the closed-form CT baseline, reported beside the DIP methods.

It is deepinv's ``Tomography.fbp`` (ramp filter, back-projection scaled by pi / (2 views)), the same
image the CT task uses as aSeqDIP's z_0.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from ..errors import UserInputError
from .closed_form import ClosedForm
from .registry import register_method


@register_method
class FBP(ClosedForm):
    """``x = FBP(y)`` for a tomography operator."""

    name: ClassVar[str] = "fbp"

    def hyperparameters(self) -> dict[str, Any]:
        return {"filter": "ramp", "implementation": "deepinv Tomography.fbp", "iterations": 0}

    def validate(self, y: torch.Tensor, physics: Any) -> None:
        if not callable(getattr(physics, "fbp", None)):
            raise UserInputError(f"method fbp needs a tomography operator (task ct), not {type(physics).__name__}")

    def solve(self, y: torch.Tensor, physics: Any) -> torch.Tensor:
        return physics.fbp(y)
