"""Image quality metrics on [0, 1] images: PSNR (torch, usable inside the loop) and SSIM (scikit-image)."""

from __future__ import annotations

import numpy as np
import torch
from skimage.metrics import structural_similarity

SSIM_SIGMA = 1.5  # Wang et al.'s Gaussian window
SSIM_WINDOW = 2 * int(3.5 * SSIM_SIGMA + 0.5) + 1  # its size in scikit-image (truncated at 3.5 sigma): 11 pixels


def psnr(x: torch.Tensor, ref: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """PSNR in dB over all pixels and channels; stays on the device (no host sync)."""
    mse = (x.float() - ref.float()).square().mean()
    return 10.0 * torch.log10(data_range**2 / mse.clamp_min(1e-20))


def to_numpy_image(x: torch.Tensor) -> np.ndarray:
    """(1, C, H, W) or (C, H, W) tensor -> (H, W) or (H, W, C) float64 array."""
    arr = x.detach().float().cpu().numpy()
    if arr.ndim == 4:
        if arr.shape[0] != 1:
            raise ValueError("expected a single image (batch of 1)")
        arr = arr[0]
    arr = np.moveaxis(arr, 0, -1)
    return arr[..., 0] if arr.shape[-1] == 1 else arr


def ssim(x: torch.Tensor, ref: torch.Tensor, data_range: float = 1.0) -> float:
    """SSIM (Wang et al. 2004) from scikit-image with Gaussian weighting, colour-aware (images of at least
    ``SSIM_WINDOW`` pixels a side)."""
    a, b = to_numpy_image(x).astype(np.float64), to_numpy_image(ref).astype(np.float64)
    return float(structural_similarity(a, b, data_range=data_range, gaussian_weights=True, sigma=SSIM_SIGMA,
                                       use_sample_covariance=False, channel_axis=-1 if a.ndim == 3 else None))
