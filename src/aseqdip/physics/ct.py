"""Parallel-beam CT: deepinv's Tomography set up as the paper uses it, post-log photon noise, FBP as z_0.

The operator is ``deepinv.physics.Tomography`` with ``circle=False`` (the whole square image is
projected), ``normalize=False`` (line integrals with one pixel as the unit length, so the post-log
sinogram has a physical meaning and FBP returns the image's own scale) and the exact autograd adjoint.
Its sinogram has shape (B, C, detectors, views); deepinv pads the image to its diagonal, which gives
``ceil(sqrt(2) * width)`` detector cells. The parallel geometry of deepinv 0.5 has no option to
change that count, so a measured sinogram with fewer cells is zero-padded to it (see
``tasks/ct.py``).

Importing this module registers FBP as ``first_estimate`` for ``Tomography``: aSeqDIP's z_0 and the
baseline every CT method is compared with.
"""

from __future__ import annotations

import math

import deepinv as dinv
import torch

from .defaults import first_estimate

# Linear attenuation that the [0, 1] image value 1 stands for in the photon-noise model (1/cm). Twice
# water's ~0.2 /cm at 60-70 keV, i.e. +1000 HU, the top of the CT task's default HU window.
MU_AT_ONE_PER_CM = 0.4


def detector_count(width: int) -> int:
    """Detector cells of deepinv's parallel-beam Tomography (circle=False) for a ``width``-pixel image."""
    return math.ceil(math.sqrt(2.0) * width)


def equispaced_angles(views: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``views`` projection angles equispaced in [0, 180) degrees, starting at 0."""
    return torch.arange(views, dtype=torch.float64).mul(180.0 / views).to(dtype)


def tomography(width: int, angles: torch.Tensor, device: str | torch.device = "cpu",
               dtype: torch.dtype = torch.float32) -> dinv.physics.Tomography:
    """The parallel-beam operator of the CT task: ``A x`` are line integrals of ``x`` in pixel units."""
    return dinv.physics.Tomography(angles=angles.to(device=device, dtype=dtype), img_width=width, circle=False,
                                   normalize=False, adjoint_via_backprop=True, device=device, dtype=dtype)


def postlog_with_photon_noise(line_integrals: torch.Tensor, photons: float, attenuation_per_pixel: float,
                              generator: torch.Generator) -> tuple[torch.Tensor, float]:
    """Noisy post-log line integrals (pixel units) and the fraction of rays that counted no photon.

    Counts ~ Poisson(I0 exp(-k p)) with p the line integral in pixel units and k (1/pixel) the
    attenuation of image value 1 times the pixel size; then p_noisy = -log(max(counts, 1) / I0) / k.
    A ray with no photon is set to one count, since -log(0) is undefined (as a scanner floors counts).
    """
    if photons <= 0 or attenuation_per_pixel <= 0:
        raise ValueError("photons and attenuation per pixel must be positive")
    expected = photons * torch.exp(-attenuation_per_pixel * line_integrals.double())
    counts = torch.poisson(expected.cpu(), generator=generator).to(line_integrals.device)
    zero_fraction = float((counts == 0).double().mean())
    postlog = -torch.log(counts.clamp_min(1.0) / photons) / attenuation_per_pixel
    return postlog.to(line_integrals.dtype), zero_fraction


@first_estimate.register(dinv.physics.Tomography)
def _fbp_first_estimate(physics: dinv.physics.Tomography, y: torch.Tensor) -> torch.Tensor:
    """Filtered back-projection (ramp filter) of the sinogram, already in the image's units: z_0 of aSeqDIP."""
    return physics.fbp(y)
