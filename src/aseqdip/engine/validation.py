"""Held-out validation: stop where the estimate best predicts measurements the method never saw.

The method is fitted on a training split of the measurements (``physics.holdout.split_measurements``);
this rule scores each iterate by its residual on the held-out entries,

    V_t = sum_held |A x_t - y|^2 / #held,

and returns the iterate with the lowest V_t (stopping after ``patience`` steps without a new minimum).
Because the held-out noise is independent of everything the method fitted, E[V_t] = (error of A x_t on
the held-out entries) + sigma^2: the minimum of V_t tracks the minimum of the prediction error, with no
noise level needed. This is the zero-shot validation of ZS-SSL (Yaman, Hosseini, Akcakaya, ICLR 2022),
applied to any operator; see docs/stopping.md for how it relates to Li et al.'s self-validation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from .state import LoopState
from .stopping import MinimumRule


class HeldOutValidation(MinimumRule):
    """Score = mean squared residual of ``physics.A(x)`` against ``y`` on the ``held`` entries.

    ``physics`` and ``y`` are the *full* operator and measurements (``Split.inner`` and the original y);
    the run itself must be given the training split. Defaults: a check every 5 steps, patience 500 steps.
    """

    name = "selfval"

    def __init__(self, estimate: Callable[[LoopState], torch.Tensor], physics: Any, y: torch.Tensor,
                 held: torch.Tensor, every: int = 5, patience: int = 500, halt: bool = True,
                 label: str | None = None) -> None:
        if not bool(held.any()):
            raise ValueError("no held-out entries to validate on")
        super().__init__(estimate, every=every, patience=patience, halt=halt, label=label)
        self.physics = physics
        self.y = y
        self.held = held

    def score(self, state: LoopState, x: torch.Tensor) -> torch.Tensor:
        if self.y.device != x.device:
            self.y, self.held = self.y.to(x.device), self.held.to(x.device)
        with torch.no_grad():
            diff = (self.physics.A(x) - self.y)[self.held]
        sq = diff.real.square() + diff.imag.square() if torch.is_complex(diff) else diff.square()
        return sq.mean()
