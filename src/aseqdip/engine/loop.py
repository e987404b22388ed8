"""The one optimisation loop that every DIP-family method runs on.

A method is a set of hooks (:class:`Hooks`): it builds the network, chooses the initial input, makes
its optimisers, says what the network sees at each step, defines the loss, updates the input after a
step, and picks the output. The loop owns everything else: device and precision, seeding, the
gradient step, timing and the callbacks (progress, metric tracking, stopping, output rules). It also
refuses to go on once the loss or the network output is NaN or infinite, or the output leaves the first
estimate's range by orders of magnitude (:class:`FiniteGuard`): such a run stops with
:class:`~aseqdip.errors.NonFiniteError` instead of returning a meaningless image.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from ..errors import DIVERGENCE_FACTOR, DivergedError, NonFiniteError
from ..physics.placement import to_device
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

    def final_image(self, state: LoopState, image: torch.Tensor) -> torch.Tensor: ...

    def clears_gradients(self, state: LoopState) -> bool: ...


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch, and return a CPU generator for the run's own draws."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


class FiniteGuard:
    """Stops the run (:class:`NonFiniteError`) at the first step whose loss or network output is not finite.

    On the CPU every step is checked (it costs no device sync). Elsewhere the first bad step is kept on
    the device and read every ``every`` steps, before each checkpoint and at the end, so the loop does
    not wait for the device at every step; the error still names the first bad step, and no checkpoint
    is ever written from a non-finite state.
    """

    NONE = 2**62

    def __init__(self, device: torch.device, every: int = 25, sync_at: Any = None, scale: float = 1.0) -> None:
        self.every = 1 if device.type == "cpu" else every
        self.sync_at = sync_at or (lambda iteration: False)
        self.first_bad: torch.Tensor | None = None
        # a finite output this far outside the first estimate's range is a diverged run (DivergedError)
        self.scale = max(float(scale), 1.0)
        self.limit = DIVERGENCE_FACTOR * self.scale

    def check(self, state: LoopState) -> None:
        loss_ok = torch.isfinite(state.loss).all()
        out_ok = torch.isfinite(state.output).all()
        peak = state.output.detach().abs().amax()
        if self.every == 1:
            if not bool(loss_ok):
                raise NonFiniteError(state.iteration, "loss", state.iterations)
            if not bool(out_ok):
                raise NonFiniteError(state.iteration, "network output", state.iterations)
            if float(peak) > self.limit:
                raise DivergedError(state.iteration, float(peak), self.scale, state.iterations)
            return
        out_ok = out_ok & (peak <= self.limit)
        step = torch.where(loss_ok & out_ok, self.NONE, state.iteration)
        self.first_bad = step if self.first_bad is None else torch.minimum(self.first_bad, step)
        if state.iteration % self.every == 0 or state.iteration >= state.iterations or self.sync_at(state.iteration):
            first = int(self.first_bad)
            if first != self.NONE:
                raise NonFiniteError(first, "loss or network output (NaN, infinite or diverged)", state.iterations)


def engine_identity(hooks: Any, iterations: int, seed: int, y: torch.Tensor, x0: torch.Tensor) -> dict[str, Any]:
    """What a checkpoint of this run must match to be resumed: the method, its settings, budget, seed, shapes."""
    settings = hooks.hyperparameters() if callable(getattr(hooks, "hyperparameters", None)) else {}
    return {"method": type(hooks).__name__, "settings": settings, "iterations": iterations, "seed": seed,
            "measurement shape": list(y.shape), "image shape": list(x0.shape)}


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
    prec = Precision.choose(dev, precision, pixels=int(x0.shape[-2]) * int(x0.shape[-1]))
    generator = seed_everything(seed)
    physics = to_device(physics, dev)
    y = y.to(dev)
    x0 = x0.to(dev)

    net = prec.prepare_network(hooks.build_network(x0, physics, generator))
    net.train()
    z = prec.prepare_input(hooks.initial_input(y, physics, x0, generator))
    state = LoopState(net=net, z=z, y=y, physics=physics, optimizers=[], generator=generator, iterations=iterations)
    state.runner = NetworkRunner(net, prec)
    state.optimizers = hooks.make_optimizers(state)
    others = [cb for cb in callbacks if not isinstance(cb, Checkpointer)]
    checkpointers = [cb for cb in callbacks if isinstance(cb, Checkpointer)]
    identity = engine_identity(hooks, iterations, seed, y, x0)
    for cb in checkpointers:
        cb.callbacks = others
        cb.identity = identity
    if resume_from is not None and Path(resume_from).exists():
        fingerprint = next((cb.fingerprint for cb in checkpointers if cb.path == Path(resume_from)), None)
        load_checkpoint(resume_from, state, others, identity=identity, fingerprint=fingerprint)
    guard = FiniteGuard(dev, sync_at=lambda it: any(cb.saves_at(it, iterations) for cb in checkpointers),
                        scale=float(x0.detach().abs().max()) if x0.numel() else 1.0)

    first_step = state.iteration  # > 0 when resumed: only the steps from here on are timed
    for cb in callbacks:
        cb.on_start(state)
    start = time.perf_counter()
    try:
        while state.iteration < iterations and not state.stop:
            _step(hooks, state)
            guard.check(state)  # before the callbacks: no checkpoint, curve or rule sees a non-finite step
            for cb in callbacks:
                cb.on_step(state)
        image, iteration_returned, rule = hooks.output(state)
        for cb in callbacks:
            chosen = cb.selection()
            if chosen is not None:
                image, iteration_returned, rule = chosen
        with torch.no_grad():
            image = hooks.final_image(state, image)
        if not bool(torch.isfinite(image).all()):
            raise NonFiniteError(iteration_returned, "returned image", iterations)
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
    if hooks.clears_gradients(state):
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
