"""The shared shell of a closed-form baseline (FBP for CT, the biharmonic fill for inpainting).

A closed-form reconstruction has no network and no iterates, but the interface of the other methods
(``name``, ``reconstruct``, ``hyperparameters``), so that the CLI, the benchmarks and the reports treat it
alike. A subclass says what it computes (:meth:`ClosedForm.solve`) and for which operators (:meth:`ClosedForm.validate`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import deepinv as dinv
import torch

from ..engine.precision import resolve_device
from ..engine.state import Reconstruction
from ..physics.placement import to_device


class ClosedForm(dinv.models.Reconstructor):
    """``x = solve(y, physics)`` once, timed, as a :class:`Reconstruction` of 0 iterations.

    ``network``, ``precision``, ``seed`` and ``progress`` are accepted so that the shared command line
    can pass them; a closed-form reconstruction uses none of them.
    """

    name: ClassVar[str]
    iterative: ClassVar[bool] = False  # no iterates for a stopping rule to choose among
    auto_stop: ClassVar[str] = "none"
    runs_on: ClassVar[str | None] = None  # a fixed device ("cpu" for a NumPy solver); None: the --device given

    def __init__(self, device: str = "auto", network: Any = None, precision: str = "auto", seed: int = 0,
                 progress: bool = False) -> None:
        super().__init__()
        self.device_name = device

    def hyperparameters(self) -> dict[str, Any]:
        return {"iterations": 0}

    def validate(self, y: torch.Tensor, physics: Any) -> None:
        """Refuse, in one line (:class:`aseqdip.errors.UserInputError`), an operator this method cannot invert."""

    def solve(self, y: torch.Tensor, physics: Any) -> torch.Tensor:
        raise NotImplementedError

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
        """:meth:`solve` of ``y``.

        The other arguments (monitoring, callbacks, and options of iterative runs such as checkpoints)
        exist for the shared interface: a closed-form result has no trajectory to track or save.
        """
        self.validate(y, physics)
        dev = resolve_device(self.runs_on or self.device_name)
        physics = to_device(physics, dev)
        start = time.perf_counter()
        with torch.no_grad():
            image = self.solve(y.to(dev), physics)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        seconds = time.perf_counter() - start
        return Reconstruction(image=image.detach().float(), iterations=0, iteration_returned=0, seconds=seconds,
                              rule="closed form", info={"device": str(dev)})
