"""Compressed sensing for MRI: L1-wavelet regularised SENSE (sigpy's ``L1WaveletRecon``), the classical reference.

Solves min_x 1/2 ||M F S x - y||^2 + lambda ||W x||_1 (W: Daubechies-4 wavelets) with FISTA on the CPU,
using the operator's own mask and coil maps. It is not a DIP method (no network), but it has the same
interface (``reconstruct``, ``hyperparameters``, ``name``), so the CLI and the reports treat it alike.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar

import deepinv as dinv
import numpy as np
import torch

from ..engine.state import Reconstruction
from ..errors import UserInputError
from ..physics.mri import from_complex, to_complex
from .registry import Option, register_method


@contextlib.contextmanager
def numpy_seed(seed: int) -> Iterator[None]:
    """Seed NumPy's global generator for the block and restore its state afterwards.

    sigpy's power iteration (for the FISTA step size) draws its start vector from NumPy's global generator.
    """
    state = np.random.get_state()
    np.random.seed(seed % 2**32)
    try:
        yield
    finally:
        np.random.set_state(state)


@register_method
class L1WaveletCS(dinv.models.Reconstructor):
    """L1-wavelet compressed sensing for (multi-coil) Cartesian MRI.

    ``cs_lambda`` is the wavelet-L1 weight on the data's own scale (the MRI task scales k-space so that
    the zero-filled image peaks near 1). ``network``, ``precision``, ``device`` and ``progress`` are
    accepted so the shared command line can pass them; a classical solver uses none of them.
    """

    name: ClassVar[str] = "cs"
    iterative: ClassVar[bool] = False  # no iterates for a stopping rule to choose among
    auto_stop: ClassVar[str] = "none"
    options: ClassVar[tuple[Option, ...]] = (Option("cs_lambda", float, "cs: L1-wavelet weight (default 1e-3)"),)

    def __init__(self, iterations: int = 200, cs_lambda: float = 1e-3, wavelet: str = "db4", seed: int = 0,
                 network: Any = None, precision: str = "auto", device: str = "auto", progress: bool = False) -> None:
        super().__init__()
        if iterations < 1:
            raise ValueError(f"iterations must be at least 1, got {iterations}")
        if cs_lambda < 0:
            raise ValueError(f"the compressed-sensing weight must be non-negative, got {cs_lambda:g}")
        self.iterations, self.cs_lambda, self.wavelet, self.seed = iterations, cs_lambda, wavelet, seed

    def hyperparameters(self) -> dict[str, Any]:
        return {"iterations": self.iterations, "cs_lambda": self.cs_lambda, "wavelet": self.wavelet,
                "solver": "FISTA (sigpy.mri.app.L1WaveletRecon)", "seed": self.seed}

    def forward(self, y: torch.Tensor, physics: Any, **kwargs: Any) -> torch.Tensor:
        return self.reconstruct(y, physics, **kwargs).image

    def validate(self, y: torch.Tensor, physics: Any) -> None:
        if not isinstance(physics, (dinv.physics.MultiCoilMRI, dinv.physics.MRI)):
            raise UserInputError(f"method cs (L1-wavelet compressed sensing) is for MRI, not {type(physics).__name__}")
        if y.shape[0] != 1:
            raise UserInputError("method cs reconstructs one image at a time (batch of 1)")

    def _sigpy_problem(self, y: torch.Tensor, physics: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(k-space (coils, H, W), maps (coils, H, W), mask (H, W)) as NumPy arrays."""
        if isinstance(physics, dinv.physics.MultiCoilMRI):
            ksp = to_complex(y.detach())[0]
            maps = physics.coil_maps[0]
        else:  # single coil: one flat map
            ksp = to_complex(y.detach())
            maps = torch.ones_like(ksp)
        mask = physics.mask[0, 0].expand(ksp.shape[-2:])
        return (ksp.cpu().numpy().astype(np.complex64), maps.cpu().numpy().astype(np.complex64),
                mask.cpu().numpy().astype(np.float32))

    def reconstruct(self, y: torch.Tensor, physics: Any, *, x0: torch.Tensor | None = None,
                    monitor: Callable[[torch.Tensor], torch.Tensor] | None = None,
                    callbacks: Sequence[Any] = (), track_every: int = 1, **iterative_options: Any) -> Reconstruction:
        """Run FISTA for ``iterations`` steps from zero; ``monitor`` (an oracle PSNR) is recorded for curves only.

        ``iterative_options`` (checkpoints of network runs) are accepted for the shared interface and unused:
        a few hundred FISTA steps take seconds and are simply run again.
        """
        from sigpy.mri.app import L1WaveletRecon

        self.validate(y, physics)
        ksp, maps, mask = self._sigpy_problem(y, physics)
        start = time.perf_counter()
        with numpy_seed(self.seed):
            app = L1WaveletRecon(ksp, maps, self.cs_lambda, weights=mask, wave_name=self.wavelet,
                                 max_iter=self.iterations, show_pbar=False)
        history: dict[str, list[float]] = {"psnr_iteration": [], "psnr": []}
        done = 0
        while not app.alg.done():
            app.alg.update()
            done += 1
            if monitor is not None and (done % track_every == 0 or done == self.iterations):
                history["psnr_iteration"].append(done)
                history["psnr"].append(float(monitor(self._to_tensor(app.x, y.device))))
        image = self._to_tensor(app.x, y.device)
        seconds = time.perf_counter() - start
        if monitor is None:
            history = {}
        return Reconstruction(image=image, iterations=done, iteration_returned=done, seconds=seconds, rule="last",
                              history=history, info={"device": "cpu (sigpy)", "precision": "complex64"})

    @staticmethod
    def _to_tensor(x: np.ndarray, device: torch.device) -> torch.Tensor:
        return from_complex(torch.from_numpy(np.array(x, dtype=np.complex64))[None]).to(device)
