"""What the optimisation loop carries from step to step, and what it hands back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn


@dataclass
class LoopState:
    """Mutable state of one reconstruction run.

    ``z`` is the network input (fixed for Vanilla DIP, replaced by f(z) in aSeqDIP, trained in
    Self-Guided DIP); ``output`` is the latest network output, detached, in fp32; ``extra`` holds
    whatever a method keeps between steps (moving averages, counters, generators): tensors, plain
    values and generators only, so that a checkpoint can save and restore it.
    """

    net: nn.Module
    z: torch.Tensor
    y: torch.Tensor
    physics: Any
    optimizers: list[torch.optim.Optimizer]
    generator: torch.Generator
    iterations: int
    iteration: int = 0
    output: torch.Tensor | None = None
    loss: torch.Tensor | None = None
    stop: bool = False
    stop_reason: str = ""
    runner: Any = None  # calls the network under the run's precision (engine.loop.NetworkRunner)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Reconstruction:
    """The result of a run: the returned image and how it was obtained.

    ``iteration_returned`` is the iteration the returned image comes from; ``rule`` names the output
    rule that chose it (never the ground truth). ``history`` holds per-iteration curves such as
    ``loss`` and, when a reference was given for monitoring, ``psnr`` (an oracle, for plots only).
    ``seconds`` is the wall time of this process's ``steps_timed`` steps: a run resumed from a
    checkpoint at step k timed only the steps after k (``None``: all ``iterations``).
    """

    image: torch.Tensor
    iterations: int
    iteration_returned: int
    seconds: float
    rule: str
    history: dict[str, list[float]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    steps_timed: int | None = None
    hyperparameters: dict[str, Any] | None = None  # of the method as it ran (set by aseqdip.rules.reconstruct)

    @property
    def steps_in_seconds(self) -> int:
        """How many steps ``seconds`` covers."""
        return self.iterations if self.steps_timed is None else self.steps_timed

    @property
    def seconds_per_iteration(self) -> float:
        """Wall seconds per step, over the steps this process ran."""
        return self.seconds / max(self.steps_in_seconds, 1)
