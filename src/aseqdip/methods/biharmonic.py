"""The biharmonic fill: the closed-form inpainting baseline, reported beside the DIP methods.

Each missing pixel is the smooth (biharmonic) interpolation of the measured ones around it, scikit-image's
``inpaint_biharmonic`` (:func:`aseqdip.physics.masks.fill_hole`); the measured pixels are y's. It is what
FBP is to CT: milliseconds, no network, and the reference a network method has to beat. On box holes at
64 px it does (docs/fidelity.md, "Box inpainting": 19.55 and 25.90 dB at HIAR 0.25 and 0.1 on the study's
images, above Vanilla DIP's and every aSeqDIP recipe's image returned under ``auto``), and on random pixel
masks too; on three held-out photographs Vanilla DIP is above it (25.97 against 25.27 dB).
"""

from __future__ import annotations

from typing import Any, ClassVar

import deepinv as dinv
import torch

from ..errors import UserInputError
from ..physics.holdout import measured_entries
from ..physics.masks import fill_hole
from .closed_form import ClosedForm
from .registry import register_method


@register_method
class Biharmonic(ClosedForm):
    """``x``: y's measured pixels, and the biharmonic interpolation of them in the hole (inpainting only)."""

    name: ClassVar[str] = "biharmonic"
    runs_on: ClassVar[str | None] = "cpu"  # scikit-image works on NumPy arrays

    def hyperparameters(self) -> dict[str, Any]:
        return {"implementation": "skimage.restoration.inpaint_biharmonic", "iterations": 0}

    def validate(self, y: torch.Tensor, physics: Any) -> None:
        if not isinstance(physics, dinv.physics.Inpainting):
            raise UserInputError(f"method biharmonic fills the holes of an inpainting mask (task inpaint), not "
                                 f"{type(physics).__name__}'s measurements")

    def solve(self, y: torch.Tensor, physics: Any) -> torch.Tensor:
        return fill_hole(y, measured_entries(physics, y), "biharmonic")
