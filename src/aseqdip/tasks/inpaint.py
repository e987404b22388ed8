"""Inpainting: a centred box hole by hole-to-image area ratio (paper: HIAR 0.1, 0.25), or random pixels."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import deepinv as dinv
import torch

from ..physics.masks import box_hole_mask
from .base import Problem, Task

if TYPE_CHECKING:  # the tasks declare their flags; only the command line parses them
    import argparse

MASKS = ("box", "random")


class Inpaint(Task):
    name: ClassVar[str] = "inpaint"
    description: ClassVar[str] = "missing pixels (box hole or random mask)"
    network: ClassVar[str] = "skip"

    def __init__(self, mask: str = "box", hiar: float = 0.25, missing: float = 0.5, sigma: float = 0.0) -> None:
        self.check(mask in MASKS, f"--mask must be one of {', '.join(MASKS)}, got {mask!r}")
        self.check(0.0 < hiar < 1.0, f"--hiar must lie strictly between 0 and 1, got {hiar:g}")
        self.check(0.0 < missing < 1.0, f"--missing must lie strictly between 0 and 1, got {missing:g}")
        self.check(sigma >= 0, f"--sigma must be >= 0 (on the 0-255 scale), got {sigma:g}")
        self.mask_kind, self.hiar, self.missing, self.sigma = mask, hiar, missing, sigma

    @classmethod
    def add_arguments(cls, group: argparse._ArgumentGroup) -> None:
        group.add_argument("--mask", choices=MASKS, default=None, help="inpaint: box hole or random pixels (default box)")
        group.add_argument("--hiar", type=float, default=None,
                           help="inpaint: hole-to-image area ratio of the box (default 0.25, paper 0.1/0.25)")
        group.add_argument("--missing", type=float, default=None,
                           help="inpaint: fraction of pixels missing for --mask random (default 0.5)")

    @classmethod
    def from_options(cls, *, mask: str | None = None, hiar: float | None = None, missing: float | None = None,
                     sigma: float | None = None, **other_tasks: Any) -> Inpaint:
        return cls(mask=mask or "box", hiar=0.25 if hiar is None else hiar, missing=0.5 if missing is None else missing,
                   sigma=0.0 if sigma is None else sigma)

    def settings(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mask": self.mask_kind, "sigma": self.sigma}
        out["hiar" if self.mask_kind == "box" else "missing"] = self.hiar if self.mask_kind == "box" else self.missing
        return out

    def simulate(self, x: torch.Tensor, seed: int = 0) -> Problem:
        _, c, h, w = x.shape
        rng = torch.Generator(device=x.device).manual_seed(seed)
        if self.mask_kind == "box":
            mask: torch.Tensor | float = box_hole_mask(h, w, self.hiar).to(x.device)
        else:
            mask = 1.0 - self.missing  # deepinv draws a Bernoulli pixel mask keeping this fraction
        noise = {"noise_model": dinv.physics.GaussianNoise(self.sigma / 255.0, rng=rng)} if self.sigma > 0 else {}
        physics = dinv.physics.Inpainting((c, h, w), mask=mask, pixelwise=True, device=x.device, rng=rng, **noise)
        with torch.no_grad():
            y = physics(x)
        return self.make_problem(physics, y, x, measurement_label="masked")
