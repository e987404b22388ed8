"""Autoencoding Sequential Deep Image Prior (Alkhouri et al., NeurIPS 2024), Algorithm 1.

For k = 1..K: take N Adam steps on ||A f(z_{k-1}) - y||^2 + lambda ||f(z_{k-1}) - z_{k-1}||^2, then
replace the input, z_k = f(z_{k-1}), detached. The reconstruction is z_K. z_0 is y for image-domain
tasks and A^H y (FBP for CT) otherwise. Both terms are means, as in the authors' MSE losses.

Option (not in the paper): ``dc_update=True`` makes the input update data-consistent, z_k = P_y(f(z_{k-1})),
where P_y is the operator's data-consistency step from ``physics.consistency`` (for MRI: the sampled k-space lines
of f(z) replaced by the measured ones).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from ..engine.loop import forward
from ..engine.state import LoopState
from ..errors import UserInputError
from ..physics.consistency import data_consistent, has_data_consistency
from .base import DIPMethod, squared_error


class ASeqDIP(DIPMethod):
    """aSeqDIP with the paper's defaults: N=2, K=2000 (4000 steps), lambda=1, Adam lr 1e-4."""

    name: ClassVar[str] = "aseqdip"

    def __init__(self, iterations: int = 4000, inner_steps: int = 2, lam: float = 1.0, lr: float = 1e-4,
                 dc_update: bool = False, **kwargs: Any) -> None:
        super().__init__(iterations=iterations, lr=lr, **kwargs)
        if inner_steps < 1:
            raise ValueError(f"inner steps N must be at least 1, got {inner_steps}")
        if lam < 0:
            raise ValueError(f"lambda must be non-negative, got {lam}")
        self.inner_steps = inner_steps
        self.lam = lam
        self.dc_update = dc_update

    def hyperparameters(self) -> dict[str, Any]:
        return {**super().hyperparameters(), "inner_steps": self.inner_steps, "lam": self.lam,
                "input_updates": self.iterations // self.inner_steps, "dc_update": self.dc_update}

    def validate(self, y: torch.Tensor, physics: Any) -> None:
        if self.dc_update and not has_data_consistency(physics):
            raise UserInputError(f"the data-consistent input update is not defined for {type(physics).__name__}")

    def next_input(self, state: LoopState) -> torch.Tensor:
        """z_k = f(z_{k-1}), made data-consistent when ``dc_update`` is on."""
        with torch.no_grad():
            z = forward(state, state.z)
            return data_consistent(state.physics, z, state.y) if self.dc_update else z

    def initial_input(self, y: torch.Tensor, physics: Any, x0: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return x0.detach().clone()

    def loss(self, state: LoopState, out: torch.Tensor) -> torch.Tensor:
        data = self.data_fidelity(state, out)
        if self.lam == 0:
            return data
        return data + self.lam * squared_error(out, state.z)

    def after_step(self, state: LoopState) -> None:
        if state.iteration % self.inner_steps == 0:
            state.z = self.next_input(state)

    def estimate(self, state: LoopState) -> torch.Tensor:
        return state.z

    def output(self, state: LoopState) -> tuple[torch.Tensor, int, str]:
        if state.iteration % self.inner_steps == 0:
            return state.z, state.iteration, "last"
        return self.next_input(state), state.iteration, "last"  # stopped inside a block: finish its update
