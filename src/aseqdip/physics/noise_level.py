"""The noise level of a measurement, in one place: given by the user, read from a noise model, or estimated.

The discrepancy principle and SURE compare a residual with the noise std ``sigma`` per measured real
entry, in the units of y. :func:`noise_level` resolves it and says where it came from:

* ``given``: the user's value (``--sure-sigma``, 0-255 scale, or a value in data units from Python);
* ``model``: the physics' Gaussian noise model. Only a simulation has one with the true sigma, so the
  ``auto`` mode never reads it (a user with real data does not have it);
* ``file``: a raw scanner file's own noise level (its noise-adjustment scan, or the reader's k-space
  background estimate; ``io/raw_mri.py``), passed in the hints as ``noise_sigma``;
* ``estimate``: estimated from y alone, dispatched on the operator (:func:`estimate_noise`):

  - image-shaped y (denoising, deblurring, any operator whose y is an image): for colour images the
    patch-PCA estimate of Chen, Zhu and Heng (ICCV 2015, "An efficient statistical method for image
    noise level estimation"), deepinv's ``PatchCovarianceNoiseEstimator`` on 5x5x3 patches: the noise
    variance is the mean of the smallest eigenvalues of the patches' covariance, over the largest tail
    whose mean is also its median. A photograph's
    colour channels are nearly redundant, so many of the 75 directions hold noise alone and texture
    cannot hide in them. For grey images (25 directions, which texture fills at 64 px) the wavelet
    median-absolute-deviation estimate of Donoho and Johnstone (Biometrika 1994; scikit-image's
    ``estimate_sigma``; deepinv's ``WaveletNoiseEstimator`` computes the same and needs ptwt). On 40
    crops of the tuning colour photographs at 64 px, sigma 15, the wavelet MAD read +5.8% on average
    and up to +19%, the patch PCA +2.0% and at most +6.9%; on the grey tuning images the patch PCA read
    higher than the MAD (docs/auto.md);
  - y with unmeasured pixels (inpainting): the same MAD idea on the Haar diagonal detail of the 2x2
    blocks whose four pixels were all measured (scikit-image's estimator would count the hole's edges
    and the zeros; no library handles missing pixels, hence this small estimator);
  - multi-coil k-space: MAD of the real and imaginary parts of the sampled entries in the outer corners
    of k-space, where an image's spectrum has decayed and white noise has not;
  - a post-log CT sinogram: with the incident photon count I0 known (a setting of the acquisition, not
    of the truth), the delta-method model Var p_i = exp(k p_i) / (k^2 I0) averaged over the rays; without
    it, MAD of the second difference along the detector, where a sinogram is smooth.

A volume's slices share one estimate (``aseqdip volume``): the median of the slices' own estimates,
passed in the hints as ``shared_noise`` and still reported as an ``estimate``.

The MAD of a zero-mean Gaussian is 0.6745 sigma, and the median ignores the minority of entries where
the signal leaks in (edges), which is why these estimates are robust to image content.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import singledispatch
from typing import Any

import deepinv as dinv
import numpy as np
import torch

from .hints import MeasurementHints
from .placement import physics_device

MAD_TO_SIGMA = 1.0 / 0.6744897501960817  # sigma of a standard normal over its median absolute deviation
SOURCES = ("given", "model", "file", "estimate", "none")


@dataclass(frozen=True)
class NoiseLevel:
    """sigma (std per measured real entry, data units), where it came from, and how it was found."""

    sigma: float
    source: str
    how: str

    def describe(self) -> dict[str, Any]:
        return {"sigma": self.sigma, "source": self.source, "how": self.how}


def from_255(value: float) -> float:
    """A noise level given on the 0-255 scale of 8-bit images (``--sure-sigma``) in data units (images in [0, 1])."""
    return value / 255.0


def model_sigma(physics: Any) -> float | None:
    """sigma of the physics' Gaussian noise model (one value for the whole measurement), or None."""
    model = getattr(getattr(physics, "inner", physics), "noise_model", None)
    if not isinstance(model, dinv.physics.GaussianNoise):
        return None
    sigma = torch.as_tensor(model.sigma, dtype=torch.float32).flatten()
    if sigma.numel() == 0 or not bool((sigma == sigma[0]).all()) or not float(sigma[0]) > 0:
        return None
    return float(sigma[0])


def noise_level(physics: Any, y: torch.Tensor, *, given: float | None = None, prefer: str = "model",
                hints: MeasurementHints | None = None) -> NoiseLevel:
    """The noise level of ``y``: ``given`` when set, else the model (``prefer="model"``) or the estimate.

    ``prefer="model"`` falls back to the estimate when the physics has no Gaussian noise model;
    ``prefer="estimate"`` never reads the model. ``hints`` holds acquisition settings an estimator may use
    (the CT task's incident photons and attenuation per pixel, a raw file's own noise level).
    """
    if given is not None:
        if not (math.isfinite(given) and given > 0):
            raise ValueError(f"the noise level must be a positive number, got {given:g}")
        return NoiseLevel(float(given), "given", "given by the user")
    if prefer not in ("model", "estimate"):
        raise ValueError(f"prefer must be 'model' or 'estimate', got {prefer!r}")
    hints = hints or MeasurementHints()
    if hints.noise_sigma:  # a raw scanner file's own noise scan or background estimate
        return NoiseLevel(float(hints.noise_sigma), "file", hints.noise_source or "read with the data")
    if prefer == "model":
        sigma = model_sigma(physics)
        if sigma is not None:
            return NoiseLevel(sigma, "model", "the physics' Gaussian noise model")
    if hints.shared_noise is not None:  # one estimate for every slice of a volume (the median of its slices')
        return NoiseLevel(float(hints.shared_noise.sigma), "estimate", hints.shared_noise.how)
    with torch.no_grad():
        sigma, how = estimate_noise(getattr(physics, "inner", physics), y.detach(), hints)
    return NoiseLevel(float(sigma), "estimate", how)


@singledispatch
def estimate_noise(physics: Any, y: torch.Tensor, hints: MeasurementHints) -> tuple[float, str]:
    """(sigma, how) estimated from y alone; the default treats an image-shaped y as a noisy image."""
    if torch.is_complex(y) or y.dim() != 4:
        raise ValueError(f"no noise estimator for {type(physics).__name__} measurements of shape {tuple(y.shape)}")
    sigma = patch_pca_sigma(y) if y.shape[1] > 1 else None
    if sigma is None:
        return wavelet_mad(y), "wavelet MAD of y (Donoho-Johnstone, scikit-image estimate_sigma)"
    return sigma, f"patch PCA of y ({PATCH}x{PATCH}x{y.shape[1]} patches, Chen-Zhu-Heng 2015)"


MAX_PATCHES = 100_000  # enough for a 75 x 75 covariance; keeps a 1024 px image's patches off the memory
PATCH = 5  # 7x7 did as well on the tuning crops (docs/auto.md); 5x5 needs fewer pixels


def patch_pca_sigma(y: torch.Tensor, patch: int = PATCH) -> float | None:
    """Mean over the batch of the patch-PCA noise estimate for (B, C, H, W) images; None when too small.

    deepinv's ``PatchCovarianceNoiseEstimator`` (Chen, Zhu and Heng 2015), called with ``patch`` x ``patch``
    patches at stride 1 (a wider stride on large images, so that at most :data:`MAX_PATCHES` patches
    enter the covariance). Its own defaults, 8x8 patches at stride 3, leave a 64 px colour image 361
    patches for a 192-entry covariance, and there it read 45% low on the tuning crops (8% low at 128 px);
    with 5x5 at stride 1 it reads what our earlier NumPy version of the estimator read, to 0.1%
    (benchmarks/results/noise-estimators/TABLE-deepinv.md). Patches span all channels, and an image must
    hold ten patches per patch entry.
    """
    _, c, h, w = y.shape
    windows = (h - patch + 1) * (w - patch + 1)
    if h < patch or w < patch or windows < 10 * c * patch * patch:
        return None
    stride = max(1, math.ceil(math.sqrt(windows / MAX_PATCHES)))
    estimate = dinv.models.PatchCovarianceNoiseEstimator.estimate_noise
    return float(estimate(y.detach().float(), patch_size=patch, stride=stride).mean())


def wavelet_mad(y: torch.Tensor) -> float:
    """Mean over the batch and channels of scikit-image's wavelet MAD estimate for (B, C, H, W) images."""
    from skimage.restoration import estimate_sigma

    arr = y.detach().float().cpu().numpy()
    values = [estimate_sigma(channel.astype(np.float64)) for image in arr for channel in image]
    return float(np.mean(values))


@estimate_noise.register(dinv.physics.Inpainting)
def _masked_image(physics: Any, y: torch.Tensor, hints: MeasurementHints) -> tuple[float, str]:
    mask = (physics.mask != 0).to(y.device).expand(y.shape)
    return masked_haar_mad(y, mask), "MAD of the Haar diagonal detail over fully measured 2x2 blocks of y"


def masked_haar_mad(y: torch.Tensor, measured: torch.Tensor) -> float:
    """MAD estimate of sigma from d = (a - b - c + e) / 2 on 2x2 blocks whose four pixels were measured.

    For white noise d has std sigma whatever the block offset; all four offsets are used, so a sparse
    random mask still gives enough blocks. Falls back to horizontal and vertical pairs, (a - b) / sqrt(2),
    when fewer than 64 blocks are complete.
    """
    y, m = y.float(), measured.bool()
    a, b, c, e = y[..., :-1, :-1], y[..., :-1, 1:], y[..., 1:, :-1], y[..., 1:, 1:]
    full = m[..., :-1, :-1] & m[..., :-1, 1:] & m[..., 1:, :-1] & m[..., 1:, 1:]
    detail = ((a - b - c + e) / 2.0)[full]
    if detail.numel() < 64:
        pairs_h = ((y[..., :, :-1] - y[..., :, 1:]) / math.sqrt(2.0))[m[..., :, :-1] & m[..., :, 1:]]
        pairs_v = ((y[..., :-1, :] - y[..., 1:, :]) / math.sqrt(2.0))[m[..., :-1, :] & m[..., 1:, :]]
        detail = torch.cat([pairs_h, pairs_v])
    if detail.numel() == 0:
        raise ValueError("too few measured neighbouring pixels to estimate the noise; give the noise level")
    return float(detail.abs().median()) * MAD_TO_SIGMA


@estimate_noise.register(dinv.physics.MultiCoilMRI)
def _kspace(physics: Any, y: torch.Tensor, hints: MeasurementHints) -> tuple[float, str]:
    # y is (B, 2, coils, H, W) with centred k-space; the mask (B, 2, H, W) is shared by the coils
    measured = (physics.mask[:, :, None] != 0).to(y.device).expand(y.shape)
    return kspace_corner_mad(y, measured), "MAD of the sampled k-space entries in the outer corners (real and imaginary)"


def kspace_corner_mad(y: torch.Tensor, measured: torch.Tensor, fraction: float = 0.25) -> float:
    """MAD estimate from sampled entries with |k_y| and |k_x| both in the outer ``fraction`` of k-space.

    The corner widens (to half of each axis) until it holds at least 256 sampled entries.
    """
    h, w = y.shape[-2:]
    while True:
        rows = torch.zeros(h, dtype=torch.bool, device=y.device)
        cols = torch.zeros(w, dtype=torch.bool, device=y.device)
        rh, rw = max(1, int(h * fraction / 2)), max(1, int(w * fraction / 2))
        rows[:rh], rows[h - rh:], cols[:rw], cols[w - rw:] = True, True, True, True
        corner = measured & rows[:, None] & cols[None, :]
        if int(corner.sum()) >= 256 or fraction >= 0.5:
            break
        fraction = min(0.5, fraction * 1.5)
    values = y[corner]
    if values.numel() == 0:
        raise ValueError("no sampled k-space entry in the outer corners to estimate the noise; give the noise level")
    return float(values.abs().median()) * MAD_TO_SIGMA


@estimate_noise.register(dinv.physics.Tomography)
def _sinogram(physics: Any, y: torch.Tensor, hints: MeasurementHints) -> tuple[float, str]:
    photons, per_pixel = hints.photons, hints.attenuation_per_pixel
    if photons and per_pixel:
        variance = torch.exp(per_pixel * y.double()) / (per_pixel**2 * photons)
        return float(variance.mean().sqrt()), "post-log Poisson model exp(k p) / (k^2 I0) from the incident photons"
    second = (y[..., :-2, :] - 2.0 * y[..., 1:-1, :] + y[..., 2:, :]) / math.sqrt(6.0)  # along the detector
    return float(second.abs().median()) * MAD_TO_SIGMA, "MAD of the sinogram's second difference along the detector"


def realised_noise(physics: Any, y: torch.Tensor, x_true: torch.Tensor, measured: torch.Tensor) -> float:
    """RMS of y - A x_true over the measured entries: the noise actually drawn (needs the truth: an oracle)."""
    device = physics_device(physics, y.device)
    with torch.no_grad():
        diff = (y.to(device) - physics.A(x_true.to(device))).float()
    mask = measured.to(device).expand(diff.shape)
    return float(diff[mask].square().mean().sqrt())


__all__ = ["NoiseLevel", "SOURCES", "estimate_noise", "from_255", "masked_haar_mad", "model_sigma",
           "noise_level", "patch_pca_sigma", "realised_noise", "wavelet_mad"]
