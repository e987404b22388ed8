"""Deblurring of colour images: non-linear (the paper's task) or linear blur, plus Gaussian noise.

Operators (``--blur``):

- ``nonlinear`` (default): camera shake seen through a saturating camera response (gamma curve and a
  smooth clip at the white level; :mod:`aseqdip.physics.blur`), with a seeded random motion kernel
  (``--kernel-type gaussian`` for a Gaussian one). Needs no weights.
- ``nonlinear`` with ``--blur-model FILE``: a learned blur network y = G(x, code) with a seeded random
  code, as in the paper and DPS (BKSE's GOPRO_wVAE weights, or any TorchScript G(x, code));
  :mod:`aseqdip.physics.learned_blur`.
- ``motion`` / ``gaussian``: deepinv's linear ``Blur`` with that kernel (reflect padding).

Noise: ``--noise`` is the std on the [-1, 1] image scale that the paper and DPS use (default 0.05);
our images are on [0, 1], so the noise added is ``noise / 2`` (0.025 by default).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import torch

from ..physics.blur import KERNELS, blur_kernel, gaussian_sigma, linear_blur, saturated_blur
from .base import Problem, Task

if TYPE_CHECKING:  # the tasks declare their flags; only the command line parses them
    import argparse

BLURS = ("nonlinear", "motion", "gaussian")


class Deblur(Task):
    name: ClassVar[str] = "deblur"
    description: ClassVar[str] = "non-linear (camera response or learned network) or linear blur, colour images"
    network: ClassVar[str] = "shallow_unet"
    grayscale: ClassVar[bool | None] = False

    def __init__(self, blur: str = "nonlinear", kernel_size: int = 31, noise: float = 0.05,
                 blur_model: str | None = None, kernel_type: str = "motion", blur_sigma: float | None = None,
                 gamma: float = 2.2, white_level: float = 0.9) -> None:
        self.check(blur in BLURS, f"--blur must be one of {', '.join(BLURS)}, got {blur!r}")
        self.check(kernel_size >= 1, f"--kernel-size must be at least 1 pixel, got {kernel_size}")
        self.check(noise >= 0, f"--noise must be >= 0 (std on the [-1, 1] scale), got {noise:g}")
        self.check(kernel_type in KERNELS, f"--kernel-type must be one of {', '.join(KERNELS)}, got {kernel_type!r}")
        self.check(blur_sigma is None or blur_sigma > 0, f"--blur-sigma must be positive, got {blur_sigma}")
        self.check(white_level > 0, f"--white-level must be positive, got {white_level:g}")
        self.check(blur_model is None or blur == "nonlinear",
                   f"--blur-model gives a non-linear operator; it cannot be combined with --blur {blur}")
        self.blur, self.kernel_size, self.noise = blur, kernel_size, noise
        self.kernel_type = kernel_type if blur == "nonlinear" else blur
        self.blur_sigma, self.gamma, self.white_level = blur_sigma, gamma, white_level
        self.blur_model = blur_model
        self._net: Any = None
        self._net_meta: dict[str, Any] = {}
        if blur_model is not None:  # read (and check) the network before any work
            from ..physics.learned_blur import load_blur_network

            self._net, self._net_meta = load_blur_network(blur_model)

    @classmethod
    def add_arguments(cls, group: argparse._ArgumentGroup) -> None:
        group.add_argument("--blur", choices=BLURS, default=None,
                           help="deblur: nonlinear (saturating camera, default), motion or gaussian (linear)")
        group.add_argument("--kernel-size", type=int, default=None, help="deblur: blur kernel size in pixels (default 31)")
        group.add_argument("--noise", type=float, default=None,
                           help="deblur: noise std on the [-1, 1] scale as in the paper (default 0.05 = 0.025 on [0, 1])")
        group.add_argument("--blur-model", default=None,
                           help="deblur: learned blur network G(x, code): BKSE GOPRO_wVAE state dict or TorchScript file")
        group.add_argument("--kernel-type", choices=KERNELS, default=None,
                           help="deblur: kernel of --blur nonlinear (default motion)")
        group.add_argument("--blur-sigma", type=float, default=None,
                           help="deblur: std of Gaussian kernels in pixels (default kernel size / 8)")
        group.add_argument("--white-level", type=float, default=None,
                           help="deblur: sensor white level of --blur nonlinear, linear units (default 0.9)")

    @classmethod
    def from_options(cls, *, blur: str | None = None, kernel_size: int | None = None, noise: float | None = None,
                     blur_model: str | None = None, kernel_type: str | None = None, blur_sigma: float | None = None,
                     white_level: float | None = None, **other_tasks: Any) -> Deblur:
        blur = blur or "nonlinear"
        if blur_model is not None:
            kernel_options = {"kernel_size": kernel_size, "kernel_type": kernel_type, "blur_sigma": blur_sigma,
                              "white_level": white_level}
            for opt, value in kernel_options.items():
                cls.check(value is None,
                          f"--{opt.replace('_', '-')} does not apply with --blur-model (the network's code sets the blur)")
        if kernel_type is not None:
            cls.check(blur == "nonlinear", f"--kernel-type applies to --blur nonlinear; --blur {blur} sets the kernel")
        return cls(blur=blur, kernel_size=31 if kernel_size is None else kernel_size,
                   noise=0.05 if noise is None else noise, blur_model=blur_model,
                   kernel_type=kernel_type or "motion", blur_sigma=blur_sigma,
                   white_level=0.9 if white_level is None else white_level)

    @property
    def sigma01(self) -> float:
        """Noise std on our [0, 1] scale."""
        return self.noise / 2.0

    def settings(self) -> dict[str, Any]:
        out: dict[str, Any] = {"blur": self.blur, "noise": self.noise, "noise_scale": "[-1, 1]", "sigma_01": self.sigma01}
        if self.blur_model is not None:
            out.update(operator="learned", blur_model=self.blur_model, **{f"network_{k}": v for k, v in self._net_meta.items()})
            return out
        out.update(kernel_type=self.kernel_type, kernel_size=self.kernel_size)
        if self.kernel_type == "gaussian":
            out["blur_sigma"] = gaussian_sigma(self.kernel_size) if self.blur_sigma is None else self.blur_sigma
        if self.blur == "nonlinear":
            out.update(operator="saturated camera shake", gamma=self.gamma, white_level=self.white_level)
        else:
            out["operator"] = "linear (deepinv Blur, reflect padding)"
        return out

    def simulate(self, x: torch.Tensor, seed: int = 0) -> Problem:
        _, c, h, w = x.shape
        kernel_rng = torch.Generator().manual_seed(seed)
        noise_rng = torch.Generator(device=x.device).manual_seed(seed + 1)
        if self.blur_model is not None:
            from ..physics.learned_blur import learned_blur

            physics: Any = learned_blur(self._net, (c, h, w), kernel_rng, sigma=self.sigma01, meta=self._net_meta,
                                        rng=noise_rng).to(x.device)
        else:
            kernel = blur_kernel(self.kernel_type, self.kernel_size, kernel_rng, self.blur_sigma).to(x.device)
            if self.blur == "nonlinear":
                physics = saturated_blur(kernel, (c, h, w), sigma=self.sigma01, gamma=self.gamma,
                                         white_level=self.white_level, rng=noise_rng)
            else:
                physics = linear_blur(kernel, (c, h, w), sigma=self.sigma01, rng=noise_rng)
        with torch.no_grad():
            y = physics(x)
        return self.make_problem(physics, y, x, measurement_label="blurred")
