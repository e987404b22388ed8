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


HOLE_FILLS = ("biharmonic",)  # named fills of a hole besides a constant value


def fill_hole(image: torch.Tensor, measured: torch.Tensor, fill: float | str) -> torch.Tensor:
    """``image`` (B, C, H, W) with its unmeasured pixels (``measured`` False) set to ``fill``.

    ``fill`` is a constant, or ``"biharmonic"``: the smooth interpolation of the measured pixels across the
    hole (scikit-image's ``inpaint_biharmonic``, per image, colour channels together), the classical
    inpainting estimate, as FBP is CT's.
    """
    if not isinstance(fill, str):
        return torch.where(measured, image, torch.full_like(image, float(fill)))
    if fill != "biharmonic":
        raise ValueError(f"a hole fill is a number or one of {', '.join(HOLE_FILLS)}, got {fill!r}")
    from skimage.restoration import inpaint_biharmonic

    out = image.detach().cpu().double().numpy().copy()
    holes = (~measured).detach().cpu().numpy().any(axis=1)  # (B, H, W): a pixel missing in any channel
    for b in range(out.shape[0]):
        if holes[b].any():
            out[b] = inpaint_biharmonic(out[b], holes[b], channel_axis=0)
    return torch.from_numpy(out).to(image.device, image.dtype)
