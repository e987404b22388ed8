"""Checkpoints inside long runs: save every M iterations, resume exactly where the run stopped.

A checkpoint holds the network (with BatchNorm buffers), every optimiser, the input z, the latest
output, the iteration, the run's generators and the global RNG, the method's ``state.extra`` and the
callbacks' own state (curves, stopping rules). On CPU with the same seed a resumed run returns the
same image as an uninterrupted one. Files are written atomically and read with ``weights_only=True``.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ..io.outputs import atomic_write
from .callbacks import Callback
from .state import LoopState

FORMAT = 1


def _pack(value: Any) -> Any:
    if isinstance(value, torch.Generator):
        return {"__generator__": value.get_state(), "device": str(value.device)}
    if isinstance(value, dict):
        return {k: _pack(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_pack(v) for v in value]
    return value


def _unpack(value: Any) -> Any:
    if isinstance(value, dict) and "__generator__" in value:
        gen = torch.Generator(device=value["device"])
        gen.set_state(value["__generator__"])
        return gen
    if isinstance(value, dict):
        return {k: _unpack(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unpack(v) for v in value]
    return value


def save_checkpoint(path: str | Path, state: LoopState, callbacks: Sequence[Callback] = ()) -> None:
    """Write ``state`` (and the callbacks' state) to ``path`` atomically."""
    payload = {
        "format": FORMAT,
        "iteration": state.iteration,
        "net": state.net.state_dict(),
        "optimizers": [opt.state_dict() for opt in state.optimizers],
        "z": state.z.detach().cpu(),
        "z_requires_grad": state.z.requires_grad,
        "output": None if state.output is None else state.output.cpu(),
        "generator": state.generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "extra": _pack(state.extra),
        "callbacks": {key: _pack(cb.state_dict()) for key, cb in _keyed(callbacks).items()},
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    atomic_write(Path(path), lambda f: f.write(buf.getvalue()))


def load_checkpoint(path: str | Path, state: LoopState, callbacks: Sequence[Callback] = ()) -> None:
    """Restore ``state`` (built afresh by the loop) and the callbacks from ``path``."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if payload.get("format") != FORMAT:
        raise ValueError(f"{path}: not an aseqdip checkpoint of format {FORMAT}")
    device = state.z.device
    state.net.load_state_dict(payload["net"])
    for opt, saved in zip(state.optimizers, payload["optimizers"], strict=True):
        opt.load_state_dict(saved)
    z = payload["z"].to(device)
    if payload["z_requires_grad"]:
        # a trained input (Self-Guided DIP): keep the optimiser's reference to the same tensor
        with torch.no_grad():
            state.z.copy_(z)
    else:
        state.z = z.contiguous(memory_format=torch.channels_last) if state.z.is_contiguous(
            memory_format=torch.channels_last) and z.dim() == 4 else z
    state.output = None if payload["output"] is None else payload["output"].to(device)
    state.iteration = int(payload["iteration"])
    state.generator.set_state(payload["generator"])
    torch.set_rng_state(payload["torch_rng"])
    state.extra.update({k: (v.to(device) if isinstance(v, torch.Tensor) else v)
                        for k, v in _unpack(payload["extra"]).items()})
    saved = payload["callbacks"]
    for key, cb in _keyed(callbacks).items():
        if key in saved:
            cb.load_state_dict(_unpack(saved[key]))


def _keyed(callbacks: Sequence[Callback]) -> dict[str, Callback]:
    """Callbacks by a stable key (class and name), so a resumed run may add or drop others."""
    out: dict[str, Callback] = {}
    for cb in callbacks:
        base = f"{type(cb).__name__}:{getattr(cb, 'name', '')}"
        key, n = base, 1
        while key in out:
            n += 1
            key = f"{base}#{n}"
        out[key] = cb
    return out


class Checkpointer(Callback):
    """Save the run every ``every`` iterations (and never more often than that)."""

    def __init__(self, path: str | Path, every: int = 500) -> None:
        if every < 1:
            raise ValueError("checkpoint interval must be at least 1 iteration")
        self.path = Path(path)
        self.every = every
        self.callbacks: Sequence[Callback] = ()  # set by the loop: whose state to save alongside

    def on_step(self, state: LoopState) -> None:
        if state.iteration % self.every == 0 and state.iteration < state.iterations:
            save_checkpoint(self.path, state, self.callbacks)
