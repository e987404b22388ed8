"""Filtered back-projection: the closed-form CT baseline, reported beside the DIP methods.

It is deepinv's ``Tomography.fbp`` (ramp filter, back-projection scaled by pi / (2 views)), the same
image the CT task uses as aSeqDIP's z_0. It has no network and no iterations, but the interface of
the other methods (``name``, ``reconstruct``, ``hyperparameters``), so the CLI and the reports treat
it alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import deepinv as dinv
import torch

from ..engine.precision import resolve_device
from ..engine.state import Reconstruction
from ..errors import UserInputError
from ..physics.placement import to_device
from .registry import register_method


@register_method
class FBP(dinv.models.Reconstructor):
    """``x = FBP(y)`` for a tomography operator.

    ``network``, ``precision``, ``seed`` and ``progress`` are accepted so that the shared command line
    can pass them; a closed-form reconstruction uses none of them.
    """

    name: ClassVar[str] = "fbp"
    iterative: ClassVar[bool] = False  # no iterates for a stopping rule to choose among
    auto_stop: ClassVar[str] = "none"

    def __init__(self, device: str = "auto", network: Any = None, precision: str = "auto", seed: int = 0,
                 progress: bool = False) -> None:
        super().__init__()
        self.device_name = device

    def hyperparameters(self) -> dict[str, Any]:
        return {"filter": "ramp", "implementation": "deepinv Tomography.fbp", "iterations": 0}

    def forward(self, y: torch.Tensor, physics: Any, **kwargs: Any) -> torch.Tensor:
        return self.reconstruct(y, physics, **kwargs).image

    def reconstruct(
        self,
        y: torch.Tensor,
        physics: Any,
        *,
        x0: torch.Tensor | None = None,
        monitor: Callable[[torch.Tensor], torch.Tensor] | None = None,
        callbacks: Sequence[Any] = (),
        track_every: int = 1,
        **iterative_options: Any,
    ) -> Reconstruction:
        """FBP of ``y``.

        The other arguments (monitoring, callbacks, and options of iterative runs such as checkpoints)
        exist for the shared interface: a closed-form result has no trajectory to track or save.
        """
        if not callable(getattr(physics, "fbp", None)):
            raise UserInputError(f"method fbp needs a tomography operator (task ct), not {type(physics).__name__}")
        dev = resolve_device(self.device_name)
        physics = to_device(physics, dev)
        start = time.perf_counter()
        with torch.no_grad():
            image = physics.fbp(y.to(dev))
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        seconds = time.perf_counter() - start
        return Reconstruction(image=image.detach().float(), iterations=0, iteration_returned=0, seconds=seconds,
                              rule="closed form", info={"device": str(dev)})
