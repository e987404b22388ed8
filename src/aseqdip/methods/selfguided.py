"""Self-Guided DIP (Liang, Bell, Qu, Wang, Ravishankar, arXiv 2402.04097, 2024; eq. 2 of the aSeqDIP paper).

Network weights theta and input z are optimised together on

    ||A E_eta[f(z + eta)] - y||^2 + alpha ||E_eta[f(z + eta)] - z||^2

with the expectation estimated by the mean over ``draws`` noise draws, all pushed through the network
as one batch. The returned image is E_eta[f(z + eta)] smoothed by an exponential moving average.

Defaults and their sources:

* alpha = 2, Adam lr 3e-4 on the network, Adam lr 0.1 on the input, z_0 ~ U(0, 1): the authors'
  notebook (github.com/sjames40/Self-Guided-DIP, ``self_guided_DIP_demo.ipynb``).
* eta = noise_scale * max|z| * U(0, 1) with noise_scale = 0.5, 4 draws, EMA weight 0.99: the DIP
  handbook's implementation of the method (github.com/alexdenker/deep-image-prior-handbook,
  ``dip/model/selfg_dip.py``).

Both terms are means (our convention for every method), so alpha weighs the same per-pixel terms.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from ..engine.state import LoopState
from .base import DIPMethod, squared_error
from .noise import rand_like
from .registry import Option, register_method


@register_method
class SelfGuidedDIP(DIPMethod):
    """Self-Guided DIP: trainable input, denoising regulariser, EMA output."""

    name: ClassVar[str] = "selfguided"
    options: ClassVar[tuple[Option, ...]] = (
        Option("alpha", float, "selfguided: denoising-regulariser weight (default 2)"),
        Option("lr_input", float, "selfguided: Adam lr of the trained input (0.1)"),
        Option("noise_scale", float, "selfguided: input noise eta ~ SCALE * max|z| * U(0,1) (default 0.5)"),
        Option("draws", int, "selfguided: noise draws averaged per step (default 4)"),
        Option("ema", float, "selfguided: weight of its moving average of the outputs (default 0.99)"),
    )

    def __init__(self, iterations: int = 4000, lr: float = 3e-4, lr_input: float = 0.1, alpha: float = 2.0,
                 noise_scale: float = 0.5, draws: int = 4, ema: float = 0.99, **kwargs: Any) -> None:
        super().__init__(iterations=iterations, lr=lr, **kwargs)
        if lr_input <= 0:
            raise ValueError(f"the input's learning rate must be positive, got {lr_input}")
        if alpha < 0:
            raise ValueError(f"alpha must be non-negative, got {alpha}")
        if noise_scale < 0:
            raise ValueError(f"the input noise scale must be non-negative, got {noise_scale}")
        if draws < 1:
            raise ValueError(f"the number of noise draws must be at least 1, got {draws}")
        if not 0.0 <= ema < 1.0:
            raise ValueError(f"the EMA weight must lie in [0, 1), got {ema}")
        self.lr_input = lr_input
        self.alpha = alpha
        self.noise_scale = noise_scale
        self.draws = draws
        self.ema = ema

    def hyperparameters(self) -> dict[str, Any]:
        return {**super().hyperparameters(), "lr_input": self.lr_input, "alpha": self.alpha,
                "noise_scale": self.noise_scale, "draws": self.draws, "ema": self.ema}

    def initial_input(self, y: torch.Tensor, physics: Any, x0: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return torch.rand(x0.shape, generator=generator)

    def make_optimizers(self, state: LoopState) -> list[torch.optim.Optimizer]:
        state.z.requires_grad_(True)
        return [torch.optim.Adam(state.net.parameters(), lr=self.lr), torch.optim.Adam([state.z], lr=self.lr_input)]

    def network_input(self, state: LoopState) -> torch.Tensor:
        """``draws`` perturbed copies of z as one batch: z + noise_scale * max|z| * U(0, 1)."""
        z = state.z.expand(self.draws, *state.z.shape[1:])
        if self.noise_scale == 0:
            return z
        scale = self.noise_scale * state.z.detach().abs().max()
        return z + scale * rand_like(z, state)

    def loss(self, state: LoopState, out: torch.Tensor) -> torch.Tensor:
        mean = out.mean(dim=0, keepdim=True)  # E_eta[f(z + eta)]
        data = squared_error(state.physics.A(mean), state.y)
        return data + self.alpha * squared_error(mean, state.z)

    def after_step(self, state: LoopState) -> None:
        mean = state.output.mean(dim=0, keepdim=True)
        state.output = mean  # the step's estimate is the expectation, not the batch of draws
        avg = state.extra.get("ema")
        state.extra["ema"] = mean.clone() if avg is None else avg.mul_(self.ema).add_(mean, alpha=1 - self.ema)

    def estimate(self, state: LoopState) -> torch.Tensor:
        return state.extra.get("ema", state.output)

    def output(self, state: LoopState) -> tuple[torch.Tensor, int, str]:
        return state.extra["ema"], state.iteration, "ema"
