"""SGLD-DIP (Cheng, Gadelha, Maji, Sheldon, "A Bayesian Perspective on the Deep Image Prior", CVPR 2019).

Vanilla DIP whose parameter updates get Langevin noise: after every Adam step each convolution
weight receives N(0, (langevin_scale * lr)^2) noise, and the reconstruction is the mean of the network
outputs sampled every ``sample_every`` steps after a burn-in. Defaults are the authors' denoising
notebook (github.com/ZezhouCheng/GP-DIP, ``Image_Denoising.ipynb``): lr 0.01, ``param_noise_sigma = 2``,
``MCMC_iter = 50``, weight decay 5e-8, input perturbation 1/30; their burn-in of 7000 steps out of
20000 is kept as the same fraction (0.35) of whatever budget is given, since the paper's runs use 4000.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from ..engine.state import LoopState
from .dip import VanillaDIP
from .noise import randn_like
from .registry import Option, register_method

BURN_IN_FRACTION = 7000 / 20000


@register_method
class SGLDDIP(VanillaDIP):
    """DIP with Langevin dynamics on the weights; returns the average of post-burn-in samples."""

    name: ClassVar[str] = "sgld"
    options: ClassVar[tuple[Option, ...]] = (
        Option("langevin_scale", float, "sgld: weight noise std = SCALE * lr per step (default 2)"),
        Option("burn_in", int, "sgld: steps before averaging (default 35% of budget)"),
        Option("sample_every", int, "sgld: average every this many steps (default 50)"),
    )

    def __init__(self, iterations: int = 4000, lr: float = 1e-2, langevin_scale: float = 2.0,
                 burn_in: int | None = None, sample_every: int = 50, weight_decay: float = 5e-8,
                 input_noise_std: float = 1.0 / 30.0, **kwargs: Any) -> None:
        super().__init__(iterations=iterations, lr=lr, input_noise_std=input_noise_std, **kwargs)
        if langevin_scale < 0:
            raise ValueError(f"the Langevin noise scale must be non-negative, got {langevin_scale}")
        if burn_in is not None and burn_in < 0:
            raise ValueError(f"the burn-in must be non-negative, got {burn_in}")
        if sample_every < 1:
            raise ValueError(f"the sampling interval must be at least 1, got {sample_every}")
        if weight_decay < 0:
            raise ValueError(f"the weight decay must be non-negative, got {weight_decay}")
        self.langevin_scale = langevin_scale
        self.burn_in = round(BURN_IN_FRACTION * iterations) if burn_in is None else burn_in
        self.sample_every = sample_every
        self.weight_decay = weight_decay

    def hyperparameters(self) -> dict[str, Any]:
        return {**super().hyperparameters(), "langevin_scale": self.langevin_scale, "burn_in": self.burn_in,
                "sample_every": self.sample_every, "weight_decay": self.weight_decay}

    def make_optimizers(self, state: LoopState) -> list[torch.optim.Optimizer]:
        return [torch.optim.Adam(state.net.parameters(), lr=self.lr, weight_decay=self.weight_decay)]

    def is_sample(self, iteration: int) -> bool:
        """Whether the output of step ``iteration`` (1-based) enters the average."""
        return iteration > self.burn_in and iteration % self.sample_every == 0

    def after_step(self, state: LoopState) -> None:
        if self.langevin_scale > 0:
            std = self.langevin_scale * self.lr
            with torch.no_grad():
                for p in state.net.parameters():
                    if p.dim() == 4:  # convolution kernels, as in the authors' add_noise
                        p.add_(randn_like(p, state), alpha=std)
        if self.is_sample(state.iteration):
            total = state.extra.get("sgld_sum")
            state.extra["sgld_sum"] = state.output.clone() if total is None else total.add_(state.output)
            state.extra["sgld_count"] = state.extra.get("sgld_count", 0) + 1

    def estimate(self, state: LoopState) -> torch.Tensor:
        """The running posterior mean once sampling has begun, the latest output before."""
        if "sgld_sum" in state.extra:
            return state.extra["sgld_sum"] / state.extra["sgld_count"]
        return state.output

    def output(self, state: LoopState) -> tuple[torch.Tensor, int, str]:
        count = state.extra.get("sgld_count", 0)
        if count == 0:  # the budget ended inside the burn-in: nothing to average
            image, iteration, _ = super().output(state)
            return image, iteration, "last (no sample after burn-in)"
        return state.extra["sgld_sum"] / count, state.iteration, f"mean of {count} samples"
