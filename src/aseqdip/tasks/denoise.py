"""Gaussian denoising: y = x + n, n ~ N(0, (sigma/255)^2), on [0, 1] images (paper: sigma 15, 25, 30)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import deepinv as dinv
import torch

from .base import Problem, Task

if TYPE_CHECKING:  # the tasks declare their flags; only the command line parses them
    import argparse


class Denoise(Task):
    name: ClassVar[str] = "denoise"
    description: ClassVar[str] = "additive white Gaussian noise"
    network: ClassVar[str] = "shallow_unet"

    def __init__(self, sigma: float = 25.0) -> None:
        self.check(sigma >= 0, f"--sigma must be >= 0 (on the 0-255 scale), got {sigma:g}")
        self.sigma = sigma

    @classmethod
    def add_arguments(cls, group: argparse._ArgumentGroup) -> None:
        group.add_argument("--sigma", type=float, default=None,
                           help="noise std on the 0-255 scale (denoise: default 25, paper 15/30; inpaint: default 0)")

    @classmethod
    def from_options(cls, *, sigma: float | None = None, **other_tasks: Any) -> Denoise:
        return cls(sigma=25.0 if sigma is None else sigma)

    def settings(self) -> dict[str, Any]:
        return {"sigma": self.sigma, "sigma_01": self.sigma / 255.0}

    def simulate(self, x: torch.Tensor, seed: int = 0) -> Problem:
        rng = torch.Generator(device=x.device).manual_seed(seed)
        physics = dinv.physics.Denoising(noise_model=dinv.physics.GaussianNoise(self.sigma / 255.0, rng=rng))
        with torch.no_grad():
            y = physics(x)
        return self.make_problem(physics, y, x, measurement_label="noisy")
