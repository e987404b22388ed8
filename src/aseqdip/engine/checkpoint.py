"""Checkpoints inside long runs: save every M iterations, resume exactly where the run stopped.

A checkpoint holds the network (with BatchNorm buffers), every optimiser, the input z, the latest
output, the iteration, the run's generators and the global RNG, the method's ``state.extra`` and the
callbacks' own state (curves, stopping rules). On CPU with the same seed a resumed run returns the
same image as an uninterrupted one. Files are written atomically and read with ``weights_only=True``.

A checkpoint also records who may resume it: the loop's ``identity`` (method, its settings, seed,
budget, shapes) and the caller's ``fingerprint`` (for the command: every option that shapes the
result and the inputs' contents, ``aseqdip.fingerprint``). Resuming with a different one, or from a
truncated or corrupted file, raises :class:`CheckpointError` (one line) before any state is touched.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ..errors import UserInputError
from ..fingerprint import describe_difference, first_difference, plain
from ..io.outputs import atomic_write
from .callbacks import Callback
from .state import LoopState

FORMAT = 2  # 2: identity and fingerprint recorded


class CheckpointError(UserInputError):
    """A checkpoint that cannot be resumed here: unreadable, of another format, or another run's."""


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


def save_checkpoint(path: str | Path, state: LoopState, callbacks: Sequence[Callback] = (), *,
                    identity: dict[str, Any] | None = None, fingerprint: dict[str, Any] | None = None) -> None:
    """Write ``state`` (and the callbacks' state) to ``path`` atomically, with who may resume it."""
    payload = {
        "format": FORMAT,
        "identity": plain(identity or {}),
        "fingerprint": None if fingerprint is None else plain(fingerprint),
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


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint at ``path`` as saved, or a one-line :class:`CheckpointError` when it cannot be read."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint") from None
    except Exception as exc:  # noqa: BLE001 - truncated zip, bad pickle, foreign objects: many types
        raise CheckpointError(f"{path}: cannot resume from this checkpoint: the file is truncated or corrupted "
                              f"({type(exc).__name__}); remove it to start afresh") from None
    if not isinstance(payload, dict) or "format" not in payload:
        raise CheckpointError(f"{path}: not an aseqdip checkpoint; remove it to start afresh")
    if payload["format"] != FORMAT:
        raise CheckpointError(f"{path}: a checkpoint of format {payload['format']} (this aseqdip writes and reads "
                              f"format {FORMAT}); remove it to start afresh")
    return payload


def check_match(path: str | Path, payload: dict[str, Any], key: str, expected: dict[str, Any] | None) -> None:
    """Refuse (one line, naming the first differing setting) a checkpoint saved for another run."""
    if expected is None:
        return
    saved = payload.get(key)
    if saved is None:
        raise CheckpointError(f"{path}: this checkpoint records no {key} to compare with this run's; "
                              f"remove it to start afresh")
    differing = first_difference(saved, plain(expected))
    if differing is not None:
        what = describe_difference(differing, saved, plain(expected), "the checkpoint", "this run")
        raise CheckpointError(f"{path} is another run's checkpoint: {what}; rerun with the checkpoint's settings, "
                              f"or remove it to start afresh")


def load_checkpoint(path: str | Path, state: LoopState, callbacks: Sequence[Callback] = (), *,
                    identity: dict[str, Any] | None = None, fingerprint: dict[str, Any] | None = None) -> None:
    """Restore ``state`` (built afresh by the loop) and the callbacks from ``path``.

    ``identity`` and ``fingerprint``, when given, must equal those saved; nothing is restored otherwise.
    """
    payload = read_checkpoint(path)
    check_match(path, payload, "fingerprint", fingerprint)
    check_match(path, payload, "identity", identity)
    try:
        _restore(payload, state, callbacks)
    except CheckpointError:
        raise
    except Exception as exc:  # noqa: BLE001 - another network's weights, optimiser or state: many types
        raise CheckpointError(f"{path}: this checkpoint does not fit this run's network or optimiser "
                              f"({type(exc).__name__}); remove it to start afresh") from None


def _restore(payload: dict[str, Any], state: LoopState, callbacks: Sequence[Callback]) -> None:
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

    def __init__(self, path: str | Path, every: int = 500, fingerprint: dict[str, Any] | None = None) -> None:
        if every < 1:
            raise ValueError("checkpoint interval must be at least 1 iteration")
        self.path = Path(path)
        self.every = every
        self.fingerprint = fingerprint  # the caller's: what a resumed run must match (see module docstring)
        self.identity: dict[str, Any] = {}  # set by the loop: the method, its settings, seed, budget, shapes
        self.callbacks: Sequence[Callback] = ()  # set by the loop: whose state to save alongside

    def saves_at(self, iteration: int, iterations: int) -> bool:
        return iteration % self.every == 0 and iteration < iterations

    def on_step(self, state: LoopState) -> None:
        if self.saves_at(state.iteration, state.iterations):
            save_checkpoint(self.path, state, self.callbacks, identity=self.identity, fingerprint=self.fingerprint)
