"""Rethinking-DIP for denoising (Jo, Chun, Choi, "Rethinking Deep Image Prior for Denoising", ICCV 2021).

The network sees the noisy image y itself, perturbed every step by fresh Gaussian noise of std
``input_noise * sigma`` (their eSURE), and is trained on Stein's unbiased risk estimate instead of the
plain data term:

    mean((f(u) - y)^2) - sigma^2 + 2 sigma^2 * mean(b * (f(u + eps b) - f(u))) / eps,   b ~ N(0, I),

the last term being a Monte-Carlo estimate of the divergence of f (one extra forward pass), with
eps = ``epsilon * sigma``. The output is an exponential moving average of the network outputs
(their "stochastic temporal ensemble"). The noise level sigma is known: it is read from the physics'
Gaussian noise model, or given as ``sure_sigma`` on the 0-255 scale (CLI ``--sure-sigma``).

Defaults from the authors' code (github.com/gistvision/DIP-denosing, ``config_parser.py``, ``loss.py``):
RAdam, lr 0.1, ``sigma_z = 0.5``, ``epsilon = 0.5``, ``running_avg_ratio = 0.99``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import deepinv as dinv
import torch

from ..engine.loop import forward
from ..engine.state import LoopState
from ..errors import UserInputError
from ..physics.noise_level import from_255, model_sigma
from .base import DIPMethod, squared_error
from .noise import randn_like
from .registry import Option, register_method


@register_method
class RethinkingDIP(DIPMethod):
    """DIP for Gaussian denoising trained on SURE with the noisy image as input."""

    name: ClassVar[str] = "rethinking"
    reads_every_measurement: ClassVar[bool] = True  # SURE reads every pixel of y
    auto_stop: ClassVar[str] = "none"  # trained on SURE with its own moving average: auto runs it as published
    options: ClassVar[tuple[Option, ...]] = (
        Option("sure_sigma", float, "rethinking: noise std on the 0-255 scale (default: the simulated noise's)"),
        Option("input_noise", float, "rethinking: input perturbation std as a fraction of sigma (default 0.5)"),
        Option("ema", float, "rethinking: weight of its moving average of the outputs (default 0.99)"),
    )

    def __init__(self, iterations: int = 4000, lr: float = 0.1, sure_sigma: float | None = None,
                 input_noise: float = 0.5, epsilon: float = 0.5, ema: float = 0.99, **kwargs: Any) -> None:
        super().__init__(iterations=iterations, lr=lr, **kwargs)
        if sure_sigma is not None and sure_sigma <= 0:
            raise ValueError(f"--sure-sigma must be positive (0-255 scale), got {sure_sigma:g}")
        if input_noise < 0:
            raise ValueError(f"the input noise factor must be non-negative, got {input_noise}")
        if epsilon <= 0:
            raise ValueError(f"the divergence step factor must be positive, got {epsilon}")
        if not 0.0 <= ema < 1.0:
            raise ValueError(f"the EMA weight must lie in [0, 1), got {ema}")
        self.sure_sigma = sure_sigma
        self.input_noise = input_noise
        self.epsilon = epsilon
        self.ema = ema

    def hyperparameters(self) -> dict[str, Any]:
        return {**super().hyperparameters(), "sure_sigma": self.sure_sigma, "input_noise": self.input_noise,
                "epsilon": self.epsilon, "ema": self.ema, "optimizer": "radam"}

    def noise_level(self, physics: Any) -> float:
        """sigma in data units: ``sure_sigma`` (0-255 scale) if given, else the physics' Gaussian noise std."""
        if self.sure_sigma is not None:
            return from_255(self.sure_sigma)
        sigma = model_sigma(physics)
        if sigma is None:
            raise UserInputError("rethinking's SURE loss needs the noise level: the measurement has no Gaussian "
                                 "noise of one known sigma > 0; give sure_sigma (0-255 scale)")
        return sigma

    def validate(self, y: torch.Tensor, physics: Any) -> None:
        if not isinstance(physics, dinv.physics.Denoising):
            raise UserInputError(f"rethinking is a denoising method (identity operator); "
                                 f"this problem's operator is {type(physics).__name__}")
        self.noise_level(physics)

    def initial_input(self, y: torch.Tensor, physics: Any, x0: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return y.detach().clone()

    def make_optimizers(self, state: LoopState) -> list[torch.optim.Optimizer]:
        state.extra["sigma"] = self.noise_level(state.physics)
        return [torch.optim.RAdam(state.net.parameters(), lr=self.lr)]

    def network_input(self, state: LoopState) -> torch.Tensor:
        u = state.z
        if self.input_noise > 0:
            u = u + (self.input_noise * state.extra["sigma"]) * randn_like(u, state)
        state.extra["input"] = u
        return u

    def loss(self, state: LoopState, out: torch.Tensor) -> torch.Tensor:
        sigma = state.extra["sigma"]
        u = state.extra.pop("input")
        eps = self.epsilon * sigma
        b = randn_like(u, state)
        divergence = (b * (forward(state, u + eps * b) - out) / eps).mean()
        return squared_error(out, state.y) - sigma**2 + 2 * sigma**2 * divergence

    def after_step(self, state: LoopState) -> None:
        avg = state.extra.get("ema")
        out = state.output
        state.extra["ema"] = out.clone() if avg is None else avg.mul_(self.ema).add_(out, alpha=1 - self.ema)

    def estimate(self, state: LoopState) -> torch.Tensor:
        return state.extra.get("ema", state.output)

    def output(self, state: LoopState) -> tuple[torch.Tensor, int, str]:
        return state.extra["ema"], state.iteration, "ema"
