"""Holding out part of the measurements: the training problem a method sees, and the entries kept back.

``split_measurements(physics, y, fraction, generator)`` draws a random set of *measured* entries of y
(pixels for denoising and deblurring, observed pixels for inpainting, sampled k-space locations for
MRI, detector bins for CT) and returns a :class:`Split`: the training physics ``HoldOut(physics, keep)``
whose ``A(x) = A_inner(x) * keep``, the training measurements ``y * keep`` and the boolean mask of
held-out entries. A method given ``(split.y, split.physics)`` never sees a held-out value: its data
term ``mean |A f - y_train|^2`` is zero on them whatever f is. (Its mean is over all entries, so it is
(1 - fraction) times smaller than a full-data term; Adam, which every method here uses, does not care.)

Which entries count as measured is dispatched on the physics type (``measured_entries``), and so is
how entries group into one held-out unit (``holdout_groups``): a pixel's colour channels together, a
k-space location's real and imaginary parts and all its coils together.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import singledispatch
from typing import Any

import deepinv as dinv
import torch

from .consistency import data_consistent, has_data_consistency
from .defaults import default_network, first_estimate


@singledispatch
def measured_entries(physics: Any, y: torch.Tensor) -> torch.Tensor:
    """Boolean tensor shaped like ``y``: True where ``y`` holds a measured value (default: everywhere)."""
    return torch.ones(y.shape, dtype=torch.bool, device=y.device)


@measured_entries.register(dinv.physics.Inpainting)
@measured_entries.register(dinv.physics.MRI)
def _masked(physics: Any, y: torch.Tensor) -> torch.Tensor:
    # y = mask * (x or its FFT): entries outside the mask were never measured
    return (physics.mask != 0).to(y.device).expand(y.shape)


@measured_entries.register(dinv.physics.MultiCoilMRI)
def _masked_coils(physics: Any, y: torch.Tensor) -> torch.Tensor:
    # y is (B, 2, coils, H, W); the mask is (B, 2, H, W) and is shared by the coils (deepinv's A)
    return (physics.mask[:, :, None] != 0).to(y.device).expand(y.shape)


@singledispatch
def holdout_groups(physics: Any) -> tuple[int, ...]:
    """Dimensions of y whose entries are held out together (default: dim 1, channels / real-imaginary)."""
    return (1,)


@holdout_groups.register(dinv.physics.MultiCoilMRI)
def _coil_groups(physics: Any) -> tuple[int, ...]:
    return (1, 2)  # a k-space location: real and imaginary parts of every coil


class HoldOut(dinv.physics.Physics):
    """``physics`` seen through a 0/1 ``keep`` mask on its measurements: A(x) = A_inner(x) * keep.

    The noise model is the inner one (so the noise level stays readable); ``inner`` is the full operator.
    """

    def __init__(self, inner: dinv.physics.Physics, keep: torch.Tensor) -> None:
        super().__init__(noise_model=inner.noise_model)
        self.inner = inner
        self.register_buffer("keep", keep)

    def A(self, x: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        return self.inner.A(x, **kwargs) * self.keep

    def noise(self, y: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        return self.inner.noise(y, **kwargs) * self.keep


class LinearHoldOut(HoldOut, dinv.physics.LinearPhysics):
    """:class:`HoldOut` of a linear operator, with the adjoint A^H(y) = A_inner^H(y * keep)."""

    def __init__(self, inner: dinv.physics.LinearPhysics, keep: torch.Tensor) -> None:
        dinv.physics.LinearPhysics.__init__(self, noise_model=inner.noise_model)
        self.inner = inner
        self.register_buffer("keep", keep)

    def A_adjoint(self, y: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        return self.inner.A_adjoint(y * self.keep, **kwargs)


def hold_out(physics: dinv.physics.Physics, keep: torch.Tensor) -> HoldOut:
    """The training operator: ``physics`` with only the ``keep`` entries of its measurements."""
    cls = LinearHoldOut if isinstance(physics, dinv.physics.LinearPhysics) else HoldOut
    return cls(physics, keep)


@dataclass
class Split:
    """A measurement split: train on ``(y, physics)``; ``held`` marks the entries kept back from it."""

    physics: HoldOut
    y: torch.Tensor
    held: torch.Tensor
    fraction: float

    @property
    def inner(self) -> dinv.physics.Physics:
        return self.physics.inner


def split_measurements(physics: dinv.physics.Physics, y: torch.Tensor, fraction: float,
                       generator: torch.Generator) -> Split:
    """Hold out ``fraction`` of the measured locations of ``y``, drawn uniformly with ``generator``."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"the held-out fraction must lie strictly between 0 and 1, got {fraction:g}")
    measured = measured_entries(physics, y)
    dims = tuple(d for d in holdout_groups(physics) if d < y.dim())
    location = measured.any(dim=dims, keepdim=True) if dims else measured
    candidates = location.reshape(-1).nonzero().squeeze(1).cpu()
    count = round(fraction * candidates.numel())
    if count < 1 or count >= candidates.numel():
        raise ValueError(f"cannot hold out {fraction:g} of {candidates.numel()} measured locations")
    pick = candidates[torch.randperm(candidates.numel(), generator=generator)[:count]]
    chosen = torch.zeros(location.numel(), dtype=torch.bool)
    chosen[pick] = True
    held = chosen.to(y.device).reshape(location.shape).expand(y.shape) & measured
    keep = (~held).to(y.real.dtype if torch.is_complex(y) else y.dtype)
    return Split(physics=hold_out(physics, keep), y=y * keep, held=held.contiguous(), fraction=fraction)


# the training operator behaves like the inner one for the per-operator defaults
@first_estimate.register(HoldOut)
def _first_estimate(physics: HoldOut, y: torch.Tensor) -> torch.Tensor:
    return first_estimate(physics.inner, y * physics.keep)  # y * keep: a held-out value never enters z_0


@default_network.register(HoldOut)
def _default_network(physics: HoldOut) -> str:
    return default_network(physics.inner)


@data_consistent.register(HoldOut)
def _data_consistent(physics: HoldOut, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """x + A^H (y - A x) with the training operator: only kept entries are put back (MRI's step, exactly)."""
    if not has_data_consistency(physics.inner) or not isinstance(physics, LinearHoldOut):
        raise NotImplementedError(f"no data-consistency step is defined for {type(physics.inner).__name__}")
    return x + physics.A_adjoint(y - physics.A(x))
