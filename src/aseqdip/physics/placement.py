"""Where an operator's tensors live, and moving it there safely.

A run may be on a GPU while its caller built the operator, y and the ground truth on the CPU. The loop
moves a module operator onto the run's device (``nn.Module.to`` moves in place), so code that uses the
operator afterwards must ask where it is (:func:`physics_device`) rather than assume the caller's device.
:func:`to_device` is the one way this package moves an operator, because deepinv 0.5's ``Tomography`` with
``adjoint_via_backprop=True`` (the ``ct`` task's) caches its autograd adjoint per input *shape* with the
device of its first call: moved to a GPU after a CPU call (the FBP z_0 is one), its adjoint and FBP fail
("expected device cpu but got cuda:0"; found on an H200). Moving resets that cache.
"""

from __future__ import annotations

import itertools
from typing import Any

import torch


def physics_device(physics: Any, fallback: torch.device) -> torch.device:
    """The device of the operator's own tensors (buffers, then parameters); ``fallback`` if it holds none."""
    if isinstance(physics, torch.nn.Module):
        for t in itertools.chain(physics.buffers(), physics.parameters()):
            return t.device
    return fallback


def to_device(physics: Any, device: torch.device) -> Any:
    """``physics`` on ``device`` (in place, as ``nn.Module.to``); a non-module operator is returned as is."""
    if not isinstance(physics, torch.nn.Module):
        return physics
    moved = physics.to(device)
    for module in moved.modules():  # deepinv's per-shape cache of the autograd adjoint (see the module docstring)
        if getattr(module, "_auto_grad_adjoint_fn", None) is not None:
            module._auto_grad_adjoint_fn = None
            module._auto_grad_adjoint_input_shape = None
    return moved
