"""The one optimisation loop that every DIP-family method runs on.

A method is a set of hooks (:class:`Hooks`): it builds the network, chooses the initial input, makes
its optimisers, says what the network sees at each step, defines the loss, updates the input after a
step, and picks the output. The loop owns everything else: device and precision, seeding, the
gradient step, timing and the callbacks (progress, metric tracking, stopping, output rules).
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from .callbacks import Callback
from .checkpoint import Checkpointer, load_checkpoint
from .precision import Precision, resolve_device
from .state import LoopState, Reconstruction


class Hooks(Protocol):
    """What a method supplies to :func:`run`."""

    def build_network(self, x0: torch.Tensor, physics: Any, generator: torch.Generator) -> nn.Module: ...

    def initial_input(self, y: torch.Tensor, physics: Any, x0: torch.Tensor, generator: torch.Generator) -> torch.Tensor: ...

    def make_optimizers(self, state: LoopState) -> list[torch.optim.Optimizer]: ...

    def network_input(self, state: LoopState) -> torch.Tensor: ...

    def loss(self, state: LoopState, out: torch.Tensor) -> torch.Tensor: ...

    def after_step(self, state: LoopState) -> None: ...

    def estimate(self, state: LoopState) -> torch.Tensor: ...

    def output(self, state: LoopState) -> tuple[torch.Tensor, int, str]: ...


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch, and return a CPU generator for the run's own draws."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


class NetworkRunner:
    """Calls the network under the run's precision and returns fp32 in the input's layout."""

    def __init__(self, net: nn.Module, precision: Precision) -> None:
        self.net = net
        self.precision = precision

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        with self.precision.autocast():
            out = self.net(z)
        return out.float()


def run(
    hooks: Hooks,
    y: torch.Tensor,
    physics: Any,
    x0: torch.Tensor,
    *,
    iterations: int,
    device: str | torch.device = "auto",
    precision: str = "auto",
    seed: int = 0,
    callbacks: Sequence[Callback] = (),
    resume_from: str | Path | None = None,
) -> Reconstruction:
    """Optimise ``hooks``' network for ``iterations`` steps on measurements ``y`` of ``physics``.

    ``x0`` is a first image-domain estimate (y, A^H y or FBP): it fixes the image shape and is the
    starting input of aSeqDIP-style methods. ``resume_from`` names a checkpoint (see
    ``engine/checkpoint.py``) to continue from; the run then ends where an uninterrupted one would.
    """
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, got {iterations}")
    dev = resolve_device(device)
    prec = Precision.choose(dev, precision)
    generator = seed_everything(seed)
    if isinstance(physics, nn.Module):
        physics = physics.to(dev)
    y = y.to(dev)
    x0 = x0.to(dev)

    net = prec.prepare_network(hooks.build_network(x0, physics, generator))
    net.train()
    z = prec.prepare_input(hooks.initial_input(y, physics, x0, generator))
    state = LoopState(net=net, z=z, y=y, physics=physics, optimizers=[], generator=generator, iterations=iterations)
    state.runner = NetworkRunner(net, prec)
    state.optimizers = hooks.make_optimizers(state)
    others = [cb for cb in callbacks if not isinstance(cb, Checkpointer)]
    for cb in callbacks:
        if isinstance(cb, Checkpointer):
            cb.callbacks = others
    if resume_from is not None and Path(resume_from).exists():
        load_checkpoint(resume_from, state, others)

    first_step = state.iteration  # > 0 when resumed: only the steps from here on are timed
    for cb in callbacks:
        cb.on_start(state)
    start = time.perf_counter()
    try:
        while state.iteration < iterations and not state.stop:
            _step(hooks, state)
            for cb in callbacks:
                cb.on_step(state)
        image, iteration_returned, rule = hooks.output(state)
        for cb in callbacks:
            chosen = cb.selection()
            if chosen is not None:
                image, iteration_returned, rule = chosen
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
    finally:
        for cb in callbacks:
            cb.on_end(state)
    seconds = time.perf_counter() - start
    history: dict[str, list[float]] = {}
    for cb in callbacks:
        history.update(cb.history())
    info = {"precision": prec.name, "device": str(dev), "stop_reason": state.stop_reason}
    if first_step:
        info["resumed_from_iteration"] = first_step
    return Reconstruction(image=image.detach().float(), iterations=state.iteration,
                          iteration_returned=iteration_returned, seconds=seconds, rule=rule,
                          history=history, info=info, steps_timed=state.iteration - first_step)


def _step(hooks: Hooks, state: LoopState) -> None:
    """One gradient step on the method's loss, then the method's after-step update."""
    for opt in state.optimizers:
        opt.zero_grad(set_to_none=True)
    out = forward(state, hooks.network_input(state))
    loss = hooks.loss(state, out)
    loss.backward()
    for opt in state.optimizers:
        opt.step()
    state.iteration += 1
    state.output = out.detach()
    state.loss = loss.detach()
    hooks.after_step(state)


def forward(state: LoopState, z: torch.Tensor) -> torch.Tensor:
    """The network applied to ``z`` under the run's precision, as fp32."""
    return state.runner(z)


def parameters(modules: Iterable[nn.Module]) -> list[nn.Parameter]:
    return [p for m in modules for p in m.parameters() if p.requires_grad]
