"""1-D Cartesian undersampling masks for MRI: whole phase-encode columns, fully sampled centre.

The mask keeps ``floor(W / acceleration)`` of the W columns (so the realised acceleration is within
one line of the requested one): the ``int(center_fraction * W)`` columns around the k-space centre,
as fastMRI does (8% at 4x, 4% at 8x by default), plus the rest drawn either uniformly at random
(deepinv's ``RandomMaskGenerator``) or equispaced with a random offset (written here: deepinv's
``EquispacedMaskGenerator`` follows fastMRI's adjusted-spacing rule, which misses the line count by up
to ~1.2 lines and can land lines inside the centre). All draws come from an explicit torch.Generator.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import torch
from deepinv.physics.generator import BaseMaskGenerator, RandomMaskGenerator

SAMPLINGS = ("random", "equispaced")


class CartesianMask(NamedTuple):
    """A sampling mask and the facts metrics.json reports about it."""

    mask: torch.Tensor  # (H, W) of 0/1, whole columns
    lines: int  # sampled columns
    center_lines: int  # columns of the fully sampled centre (the auto-calibration region)
    acceleration: float  # realised: W / lines

    def settings(self) -> dict[str, float | int]:
        width = self.mask.shape[-1]
        return {"sampled_lines": self.lines, "total_lines": width, "center_lines": self.center_lines,
                "acceleration_realised": round(self.acceleration, 4)}


def default_center_fraction(acceleration: float) -> float:
    """fastMRI's fully sampled centre: 8% of the lines below 8x, 4% from 8x on."""
    return 0.08 if acceleration < 8 else 0.04


def center_slice(width: int, n_center: int) -> slice:
    """The centre columns, placed as deepinv places them (around column W // 2, the DC line)."""
    start = width // 2 - n_center // 2
    return slice(start, start + n_center)


class EquispacedLinesGenerator(BaseMaskGenerator):
    """Centre lines plus the remaining lines equispaced (random offset) over the other columns.

    Overrides only how lines are drawn; deepinv's base class fixes the counts (n_center, n_lines).
    """

    def get_pdf(self, W: int) -> torch.Tensor:  # noqa: N803 - deepinv's signature
        raise NotImplementedError("an equispaced mask has no sampling density")

    def sample_mask(self, mask: torch.Tensor) -> torch.Tensor:
        width = mask.shape[-1]
        centre = center_slice(width, self.n_center)
        outside = torch.ones(width, dtype=torch.bool)
        outside[centre] = False
        candidates = torch.nonzero(outside).flatten()
        mask[..., centre] = 1
        if self.n_lines > 0:
            step = candidates.numel() / self.n_lines  # >= 1, so the picks are distinct
            offset = torch.rand((), generator=self.rng, device=self.rng.device).item() * step
            picks = (offset + step * torch.arange(self.n_lines)).floor().long().clamp_max(candidates.numel() - 1)
            mask[..., candidates[picks].to(mask.device)] = 1
        return mask


def cartesian_mask(height: int, width: int, acceleration: float, sampling: str = "random",
                   center_fraction: float | None = None, generator: torch.Generator | None = None) -> CartesianMask:
    """Draw a (H, W) column mask keeping ``floor(W / acceleration)`` columns (see the module docstring)."""
    if sampling not in SAMPLINGS:
        raise ValueError(f"sampling must be one of {', '.join(SAMPLINGS)}, got {sampling!r}")
    if not acceleration > 1:
        raise ValueError(f"acceleration must be greater than 1, got {acceleration:g}")
    if center_fraction is None:
        center_fraction = default_center_fraction(acceleration)
    if not 0 <= center_fraction < 1:
        raise ValueError(f"centre fraction must lie in [0, 1), got {center_fraction:g}")
    if int(center_fraction * width) > width // acceleration:
        raise ValueError(f"a centre of {center_fraction:g} of the lines leaves no room for {acceleration:g}x "
                         f"acceleration; lower the centre fraction")
    if width // acceleration < 1:
        raise ValueError(f"acceleration {acceleration:g} keeps no line of {width} columns")
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    cls = RandomMaskGenerator if sampling == "random" else EquispacedLinesGenerator
    with warnings.catch_warnings():  # "0 high-frequency lines" is a legitimate choice here
        warnings.simplefilter("ignore", UserWarning)
        gen = cls((height, width), acceleration=acceleration, center_fraction=center_fraction, rng=generator)
        mask = gen.step(batch_size=1)["mask"][0, 0].float()
    lines = int(mask[0].sum().item())
    return CartesianMask(mask=mask, lines=lines, center_lines=gen.n_center, acceleration=width / lines)


def auto_calibration_width(columns: torch.Tensor) -> int:
    """Width of the contiguous run of sampled columns around the centre column W // 2 (0 if unsampled)."""
    sampled = columns.flatten().bool().tolist()
    mid = len(sampled) // 2
    if not sampled[mid]:
        return 0
    left = mid
    while left > 0 and sampled[left - 1]:
        left -= 1
    right = mid
    while right < len(sampled) - 1 and sampled[right + 1]:
        right += 1
    return right - left + 1
