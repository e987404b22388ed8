"""Receiver-coil noise: covariance from a noise-adjustment scan or from k-space background, prewhitening.

Coil noise is complex Gaussian, correlated between coils: n ~ CN(0, Psi) with Psi the (coils, coils)
covariance. Prewhitening multiplies the coil vector of every k-space sample by L^{-1}, where
Psi = L L^H (Cholesky), so the whitened noise has identity covariance (E|n_c|^2 = 1 in every coil,
independent coils). ESPIRiT, the data fidelity and the discrepancy principle all assume white noise
of one level, which is what whitening gives them.

Without a noise scan the noise is estimated from the k-space corners, where a real image has almost no
signal left and the samples are mostly noise.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ..errors import UserInputError

NOISE_SCAN = "noise scan"
BACKGROUND = "k-space background estimate"
CORNER_FRACTION = 0.25  # the outer quarter of each k-space axis (readout and phase) makes a corner


class CoilNoise(NamedTuple):
    """What is known about the coil noise of a measurement, in the units of its k-space samples."""

    covariance: np.ndarray  # (coils, coils) complex128, Hermitian
    source: str  # NOISE_SCAN or BACKGROUND
    samples: int  # how many coil vectors the estimate is made of
    note: str = ""  # how it was scaled, where it came from


def noise_covariance(samples: np.ndarray) -> np.ndarray:
    """Psi = N N^H / n from noise samples (coils, n): zero-mean noise, so no mean is subtracted."""
    samples = np.asarray(samples, dtype=np.complex128)
    if samples.ndim != 2 or samples.shape[1] < 1:
        raise ValueError(f"noise samples must be (coils, n) with n >= 1, got {samples.shape}")
    return samples @ samples.conj().T / samples.shape[1]


def whitening_matrix(covariance: np.ndarray) -> np.ndarray:
    """L^{-1} with Psi = L L^H: whitened = L^{-1} data has identity noise covariance.

    A covariance that is not positive definite (a dead or duplicated coil) cannot be whitened: a
    UserInputError names the weakest coil.
    """
    covariance = np.asarray(covariance, dtype=np.complex128)
    try:
        lower = np.linalg.cholesky(covariance)
    except np.linalg.LinAlgError:
        weakest = int(np.argmin(np.real(np.diag(covariance))))
        raise UserInputError(f"the noise covariance is not positive definite (coil {weakest} has variance "
                             f"{np.real(covariance[weakest, weakest]):.3g}); give --no-prewhiten") from None
    return np.linalg.inv(lower)


def prewhiten(kspace: np.ndarray, whitening: np.ndarray) -> np.ndarray:
    """Apply the (coils, coils) ``whitening`` matrix to the coil axis of ``kspace`` (coils, ...)."""
    coils = kspace.shape[0]
    flat = kspace.reshape(coils, -1)
    return (whitening @ flat).reshape(kspace.shape).astype(kspace.dtype, copy=False)


def corner_mask(height: int, width: int, fraction: float = CORNER_FRACTION) -> np.ndarray:
    """(H, W) bool: the four corners made of the outer ``fraction`` of both axes (half of it at each end)."""
    rows = np.abs(np.arange(height) - height // 2) >= height * (0.5 - fraction / 2)
    cols = np.abs(np.arange(width) - width // 2) >= width * (0.5 - fraction / 2)
    return rows[:, None] & cols[None, :]


def background_noise(kspace: np.ndarray, measured: np.ndarray) -> CoilNoise:
    """Coil covariance from the measured samples in the k-space corners of ``kspace`` (coils, H, W).

    ``measured`` (H, W) marks the samples that were acquired (zero-filled ones are no evidence). The
    estimate is slightly high where the image still has energy at high spatial frequencies.
    """
    coils, height, width = kspace.shape
    region = corner_mask(height, width) & np.asarray(measured, dtype=bool)
    if int(region.sum()) < 2 * coils:
        raise UserInputError(f"too few measured k-space samples in the corners ({int(region.sum())}) to estimate "
                             f"the noise of {coils} coils")
    samples = kspace[:, region]
    return CoilNoise(noise_covariance(samples), BACKGROUND, samples.shape[1],
                     note=f"covariance of the measured samples in the outer {CORNER_FRACTION:g} of both k-space axes")


def noise_sigma(covariance: np.ndarray, scale: float = 1.0, variance_factor: float = 1.0) -> float:
    """Noise std per real and per imaginary part of a k-space entry (deepinv's ``GaussianNoise`` sigma).

    E|n|^2 averaged over coils is trace(Psi) / coils; each of the real and imaginary parts carries half
    of it. ``variance_factor`` scales the variance (1 / averages); ``scale`` divides the data.
    """
    coils = covariance.shape[0]
    variance = float(np.real(np.trace(covariance))) / coils * variance_factor
    return math.sqrt(max(variance, 0.0) / 2.0) / scale
