"""Autoencoding Sequential Deep Image Prior (Alkhouri et al., NeurIPS 2024), Algorithm 1.

For k = 1..K: take N Adam steps on ||A f(z_{k-1}) - y||^2 + lambda ||f(z_{k-1}) - z_{k-1}||^2, then
replace the input, z_k = f(z_{k-1}), detached. The reconstruction is z_K. z_0 is y for image-domain
tasks and A^H y (FBP for CT) otherwise. Both terms are means, as in the authors' MSE losses.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from ..engine.loop import forward
from ..engine.state import LoopState
from .base import DIPMethod, squared_error


class ASeqDIP(DIPMethod):
    """aSeqDIP with the paper's defaults: N=2, K=2000 (4000 steps), lambda=1, Adam lr 1e-4."""

    name: ClassVar[str] = "aseqdip"

    def __init__(self, iterations: int = 4000, inner_steps: int = 2, lam: float = 1.0, lr: float = 1e-4,
                 **kwargs: Any) -> None:
        super().__init__(iterations=iterations, lr=lr, **kwargs)
        if inner_steps < 1:
            raise ValueError(f"inner steps N must be at least 1, got {inner_steps}")
        if lam < 0:
            raise ValueError(f"lambda must be non-negative, got {lam}")
        self.inner_steps = inner_steps
        self.lam = lam

    def hyperparameters(self) -> dict[str, Any]:
        return {**super().hyperparameters(), "inner_steps": self.inner_steps, "lam": self.lam,
                "input_updates": self.iterations // self.inner_steps}

    def initial_input(self, y: torch.Tensor, physics: Any, x0: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return x0.detach().clone()

    def loss(self, state: LoopState, out: torch.Tensor) -> torch.Tensor:
        data = self.data_fidelity(state, out)
        if self.lam == 0:
            return data
        return data + self.lam * squared_error(out, state.z)

    def after_step(self, state: LoopState) -> None:
        if state.iteration % self.inner_steps == 0:
            with torch.no_grad():
                state.z = forward(state, state.z)

    def estimate(self, state: LoopState) -> torch.Tensor:
        return state.z

    def output(self, state: LoopState) -> tuple[torch.Tensor, int, str]:
        if state.iteration % self.inner_steps == 0:
            return state.z, state.iteration, "last"
        with torch.no_grad():  # stopped inside a block: finish the input update it was heading for
            return forward(state, state.z), state.iteration, "last"
