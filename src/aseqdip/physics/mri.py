"""Multi-coil MRI helpers around deepinv's ``MultiCoilMRI`` (A = M F S, centred orthonormal FFT).

deepinv supplies the operator, birdcage coil maps and ESPIRiT (through sigpy); this module adds what it
lacks: a smooth synthetic phase for simulating complex images from magnitude images, the magnitude
display/metric image normalised by a reference's maximum over fastMRI's central 320x320 crop, and the
data-consistency step aSeqDIP can apply to its input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import deepinv as dinv
import torch

FASTMRI_CROP = (320, 320)  # fastMRI evaluates on the central 320x320 of the image (knee and brain)


def to_complex(x: torch.Tensor) -> torch.Tensor:
    """(B, 2, ...) real/imaginary channels -> (B, ...) complex (deepinv's convention)."""
    return dinv.physics.MultiCoilMRI.to_torch_complex(x)


def from_complex(z: torch.Tensor) -> torch.Tensor:
    """(B, ...) complex -> (B, 2, ...) real/imaginary channels."""
    return dinv.physics.MultiCoilMRI.from_torch_complex(z).contiguous()


def magnitude(x: torch.Tensor) -> torch.Tensor:
    """(B, 2, H, W) -> (B, 1, H, W) magnitude."""
    return torch.linalg.vector_norm(x, dim=1, keepdim=True)


def center_crop(x: torch.Tensor, size: tuple[int, int] = FASTMRI_CROP) -> torch.Tensor:
    """The central ``size`` of the last two axes, or the whole axis where it is smaller (as fastMRI crops)."""
    h, w = x.shape[-2:]
    ch, cw = min(size[0], h), min(size[1], w)
    top, left = (h - ch) // 2, (w - cw) // 2
    return x[..., top : top + ch, left : left + cw]


@dataclass(frozen=True)
class MagnitudeImage:
    """Estimate -> the image metrics and PNGs use: |x| over the central crop, divided by ``scale``.

    ``scale`` is the reference's maximum magnitude over that crop, so the reference spans [0, 1] and every
    estimate is measured on the same scale (fastMRI's PSNR with data_range = max of the target).
    """

    scale: float
    crop: tuple[int, int] = FASTMRI_CROP

    @classmethod
    def of_reference(cls, reference: torch.Tensor, crop: tuple[int, int] = FASTMRI_CROP) -> MagnitudeImage:
        peak = float(center_crop(magnitude(reference), crop).max())
        if not peak > 0:
            raise ValueError("the reference image is zero over the evaluation crop")
        return cls(scale=peak, crop=crop)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return center_crop(magnitude(x), self.crop) / self.scale


def smooth_phase(height: int, width: int, generator: torch.Generator, peak: float = math.pi / 2) -> torch.Tensor:
    """A random smooth phase map (H, W): a quadratic polynomial in normalised coordinates, |phase| <= ``peak``.

    Real MR images carry a slowly varying phase (B0 offsets, coil and receiver phase); a magnitude image
    with zero phase would make the complex problem artificially easy.
    """
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, height), torch.linspace(-1, 1, width), indexing="ij")
    basis = torch.stack([xx, yy, xx * yy, xx.square(), yy.square()])
    coeffs = torch.randn(basis.shape[0], generator=generator)
    phase = (coeffs[:, None, None] * basis).sum(0)
    phase = phase - phase.mean()
    return phase * (peak / phase.abs().max().clamp_min(1e-12))


def with_phase(magnitude_image: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) magnitude and (H, W) phase -> (B, 2, H, W) complex image as real/imaginary channels."""
    return torch.cat([magnitude_image * torch.cos(phase), magnitude_image * torch.sin(phase)], dim=1)


def birdcage_maps(coils: int, height: int, width: int) -> torch.Tensor:
    """Simulated (coils, H, W) complex birdcage sensitivities (deepinv through sigpy), root-sum-of-squares 1."""
    physics = dinv.physics.MultiCoilMRI(coil_maps=coils, img_size=(height, width))
    return physics.coil_maps[0].to(torch.complex64)


def espirit_maps(y: torch.Tensor, calib_width: int, crop: float = 0.95) -> torch.Tensor:
    """ESPIRiT coil maps (1, coils, H, W) from the centre ``calib_width`` square of k-space y (B, 2, N, H, W).

    deepinv calls sigpy's ``EspiritCalib`` on the CPU. The calibration square must lie inside the fully
    sampled auto-calibration lines, so only measured data are used.
    """
    maps = dinv.physics.MultiCoilMRI.estimate_coil_maps(y.detach().cpu(), calib_size=calib_width,
                                                        espirit_crop=crop)
    return maps.to(torch.complex64)


def mri_data_consistent(physics: dinv.physics.MRI | dinv.physics.MultiCoilMRI, x: torch.Tensor,
                        y: torch.Tensor) -> torch.Tensor:
    """Replace the sampled k-space lines of ``x``'s coil images by the measured ``y``; return the image.

    Written as x + A^H (y - A x) through deepinv's A and A^H: with sensitivities normalised so that
    sum_c |S_c|^2 = 1 (simulated birdcage maps; ESPIRiT maps inside the object) this equals
    S^H F^H [(1 - M) F S x + y] exactly, and outside the maps' support it leaves x as it is.
    """
    return x + physics.A_adjoint(y - physics.A(x))
