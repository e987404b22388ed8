"""Inpainting masks deepinv does not draw: a centred box hole given by its hole-to-image area ratio."""

from __future__ import annotations

import math

import torch


def box_hole_mask(height: int, width: int, hiar: float) -> torch.Tensor:
    """A (1, 1, H, W) mask of ones with a centred rectangular hole of zeros.

    The hole keeps the image's aspect ratio and covers ``hiar`` (hole-to-image area ratio, in (0, 1))
    of the pixels, up to rounding to whole rows and columns.
    """
    if not 0.0 < hiar < 1.0:
        raise ValueError(f"HIAR must lie in (0, 1), got {hiar}")
    side = math.sqrt(hiar)
    hh = max(1, round(height * side))
    hw = max(1, round(width * side))
    top, left = (height - hh) // 2, (width - hw) // 2
    mask = torch.ones(1, 1, height, width)
    mask[..., top : top + hh, left : left + hw] = 0.0
    return mask
