"""Warm start: begin a run from another run's final network weights (and optionally its Adam state).

Used by ``aseqdip volume``: neighbouring slices of a volume are nearly the same image, so the network
fitted to one is a far better start for the next than random weights. :class:`WarmStart` is a plain
callback, so no method and no loop code changes: at ``on_start`` (after the method built its network,
input and optimisers) it loads the given weights; at ``on_end`` it keeps the run's final weights for the
next slice. Everything else of the run is its own: its input z_0 (its own first estimate), its budget,
its stopping rule.

Optimiser state is optional (``optimizer=True``): only Adam's moments and step counts are carried over,
never the learning rate or other settings of the receiving run (its own warm-up or ramp still apply).
``mix < 1`` starts from ``mix * neighbour + (1 - mix) * own random weights`` (floating-point tensors; the
shrink of Ash & Adams, "On Warm-Starting Neural Network Training", NeurIPS 2020, with the run's own
initialisation as the perturbation). ``input=True`` also starts the network's input from the other run's
final input (aSeqDIP: its final estimate z_K, in place of the run's own z_0 = y or A^H y);
``consistent=True`` then passes that input through the operator's data-consistency step with this run's own
measurements (MRI: the neighbour's estimate with this slice's sampled k-space lines put back), where the
operator has one (:mod:`aseqdip.physics.consistency`); elsewhere the input stays the neighbour's.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import UserInputError
from ..physics.consistency import data_consistent, has_data_consistency
from .callbacks import Callback
from .state import LoopState


@dataclass
class Weights:
    """A network's weights and, when kept, its optimisers' states (on the CPU, detached)."""

    network: dict[str, torch.Tensor]
    optimizers: list[dict[str, Any]] | None = None
    input: torch.Tensor | None = None  # the network's final input (aSeqDIP: its estimate z_K)

    def to_file(self) -> dict[str, Any]:
        return {"network": self.network, "optimizers": self.optimizers, "input": self.input}

    @classmethod
    def from_file(cls, payload: dict[str, Any]) -> Weights:
        return cls(network=payload["network"], optimizers=payload.get("optimizers"), input=payload.get("input"))


WEIGHTS_FORMAT = "aseqdip network weights 1"


def save_weights(path: Any, weights: Weights, about: dict[str, Any]) -> None:
    """Write ``weights`` (network, Adam's state, final input) and ``about`` (method, network, shapes) for ``--init``.

    Plain tensors, dicts and strings only, so that :func:`load_weights` can read it with
    ``torch.load(weights_only=True)``: no code runs when a weights file is read.
    """
    from ..io.outputs import atomic_write

    payload = {"format": WEIGHTS_FORMAT, "about": about, "network": weights.network, "optimizers": weights.optimizers,
               "input": weights.input}
    atomic_write(path, lambda f: torch.save(payload, f))


def load_weights(path: Any) -> tuple[Weights, dict[str, Any]]:
    """The weights and their record from a file :func:`save_weights` wrote; ``ValueError`` when it is not one."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a truncated or foreign file: say so in one line
        raise ValueError(f"not a weights file aseqdip wrote ({type(exc).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != WEIGHTS_FORMAT:
        raise ValueError("not a weights file aseqdip wrote (no format record)")
    weights = Weights(network=payload["network"], optimizers=payload.get("optimizers"), input=payload.get("input"))
    return weights, dict(payload.get("about") or {})


def _cpu(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone()
    if isinstance(value, dict):
        return {k: _cpu(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_cpu(v) for v in value)
    return value


class WarmStart(Callback):
    """Load ``start`` into the run's network (and optimisers) before its first step; keep the final weights.

    ``start=None`` is a cold start (the method's own random weights) that still keeps its final weights.
    ``optimizer`` says whether Adam's state is loaded from ``start`` and kept in ``final``. A run resumed
    from a checkpoint (``state.iteration > 0``) keeps the checkpoint's weights.
    """

    def __init__(self, start: Weights | None = None, optimizer: bool = False, mix: float = 1.0,
                 input: bool = False, consistent: bool = False) -> None:
        if not 0.0 <= mix <= 1.0:
            raise ValueError(f"the warm-start mix must lie in [0, 1], got {mix}")
        self.start = start
        self.optimizer = optimizer
        self.mix = mix
        self.input = input
        self.consistent = consistent
        self.final: Weights | None = None

    def on_start(self, state: LoopState) -> None:
        if self.start is None or state.iteration > 0:
            return
        _check_fits(self.start.network, state.net.state_dict())
        if self.mix < 1.0:  # shrink towards this run's own random weights (Ash & Adams 2020, shrink and perturb)
            own = state.net.state_dict()
            mixed = {k: (self.mix * v.to(own[k].dtype) + (1.0 - self.mix) * own[k]
                         if v.is_floating_point() and k in own else v) for k, v in self.start.network.items()}
            state.net.load_state_dict(mixed)
        else:
            state.net.load_state_dict(self.start.network)
        if self.optimizer and self.start.optimizers is not None:
            for opt, saved in zip(state.optimizers, self.start.optimizers, strict=True):
                own = opt.state_dict()
                own["state"] = copy.deepcopy(saved["state"])  # moments only: this run's rates stay its own
                opt.load_state_dict(own)
        if self.input and self.start.input is not None and self.start.input.shape == state.z.shape:
            state.z = self.start.input.to(device=state.z.device, dtype=state.z.dtype)
            if self.consistent and has_data_consistency(state.physics):
                with torch.no_grad():
                    state.z = data_consistent(state.physics, state.z, state.y)

    def on_end(self, state: LoopState) -> None:
        optimizers = [_cpu(opt.state_dict()) for opt in state.optimizers] if self.optimizer else None
        self.final = Weights(network=_cpu(state.net.state_dict()), optimizers=optimizers,
                             input=_cpu(state.z) if self.input else None)


def _check_fits(start: dict[str, torch.Tensor], own: dict[str, torch.Tensor]) -> None:
    """Refuse, in one line, weights of another network (other layers, widths or channel counts)."""
    missing = sorted(set(own) - set(start))
    if missing or set(start) - set(own):
        name = missing[0] if missing else sorted(set(start) - set(own))[0]
        raise UserInputError(f"the weights to start from belong to another network: layer {name} is in one and not "
                             f"the other (another network, method or channel count?)")
    for key, value in own.items():
        if tuple(start[key].shape) != tuple(value.shape):
            raise UserInputError(f"the weights to start from belong to another network: {key} has shape "
                                 f"{tuple(start[key].shape)} there and {tuple(value.shape)} here (another network "
                                 f"or channel count?)")
