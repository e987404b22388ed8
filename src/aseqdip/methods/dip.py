"""Vanilla Deep Image Prior (Ulyanov, Vedaldi, Lempitsky, CVPR 2018).

A fixed random input z ~ U(0, 1) * 0.1 and min_theta ||A f_theta(z) - y||^2 with Adam at lr 0.01, as in
the DIP reference code. The output is f_theta(z) at the final weights.

``input`` replaces the random z with a given tensor of x0's shape (Python only; the paper's Figure 1
feeds DIP the truth plus noise to show that a better input gives a better image, benchmarks/paper.py).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from ..engine.state import LoopState
from ..errors import UserInputError
from .base import DIPMethod
from .registry import register_method


@register_method
class VanillaDIP(DIPMethod):
    """Vanilla DIP; ``input_noise_std`` > 0 adds DIP's per-step input perturbation (off by default)."""

    name: ClassVar[str] = "dip"

    def __init__(self, iterations: int = 4000, lr: float = 1e-2, input_scale: float = 0.1,
                 input_channels: int | None = None, input_noise_std: float = 0.0,
                 input: torch.Tensor | None = None, **kwargs: Any) -> None:
        super().__init__(iterations=iterations, lr=lr, **kwargs)
        self.input_scale = input_scale
        self.given_input = None if input is None else input.detach().clone()
        self.n_input_channels = input_channels
        self.input_noise_std = input_noise_std

    def hyperparameters(self) -> dict[str, Any]:
        return {**super().hyperparameters(), "input_scale": self.input_scale,
                "input_channels": self.n_input_channels, "input_noise_std": self.input_noise_std,
                "input": "random" if self.given_input is None else f"given {list(self.given_input.shape)}"}

    def input_channels(self, x0: torch.Tensor) -> int:
        return self.n_input_channels or x0.shape[1]

    def initial_input(self, y: torch.Tensor, physics: Any, x0: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        shape = (x0.shape[0], self.input_channels(x0), *x0.shape[2:])
        if self.given_input is not None:
            if tuple(self.given_input.shape) != shape:
                raise UserInputError(f"the given DIP input has shape {tuple(self.given_input.shape)}, expected {shape}")
            return self.given_input.clone()
        return torch.rand(shape, generator=generator) * self.input_scale

    def network_input(self, state: LoopState) -> torch.Tensor:
        if self.input_noise_std <= 0:
            return state.z
        noise = torch.randn(state.z.shape, generator=state.generator).to(state.z)
        return state.z + self.input_noise_std * noise
