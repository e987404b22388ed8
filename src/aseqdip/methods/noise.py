"""Random draws inside a run, on the run's device, reproducible from the run's seed.

The loop hands methods a CPU :class:`torch.Generator` (``state.generator``). Methods that draw large
tensors every step (Langevin noise on every weight, several input perturbations) would pay a host
draw and a copy per step with it, so they use one device generator per run, seeded once from the
run's generator: the run stays reproducible and the draws stay on the accelerator.
"""

from __future__ import annotations

import torch

from ..engine.state import LoopState

_KEY = "device_generator"


def device_generator(state: LoopState) -> torch.Generator:
    """The run's generator on ``state.z``'s device (created on first use, seeded from ``state.generator``)."""
    gen = state.extra.get(_KEY)
    if gen is None:
        seed = int(torch.randint(0, 2**62, (1,), generator=state.generator))
        gen = torch.Generator(device=state.z.device).manual_seed(seed)
        state.extra[_KEY] = gen
    return gen


def randn_like(x: torch.Tensor, state: LoopState) -> torch.Tensor:
    """Standard normal noise shaped like ``x`` (real dtype, ``x``'s device), from the run's generator."""
    dtype = x.real.dtype if torch.is_complex(x) else x.dtype
    return torch.randn(x.shape, generator=device_generator(state), device=x.device, dtype=dtype)


def rand_like(x: torch.Tensor, state: LoopState) -> torch.Tensor:
    """Uniform [0, 1) noise shaped like ``x`` (real dtype, ``x``'s device), from the run's generator."""
    dtype = x.real.dtype if torch.is_complex(x) else x.dtype
    return torch.rand(x.shape, generator=device_generator(state), device=x.device, dtype=dtype)
