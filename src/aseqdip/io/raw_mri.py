"""Measured multi-coil k-space from any supported file, told apart by content, not by extension.

* fastMRI HDF5 (a ``kspace`` dataset): ``io.fastmri``, as before;
* ISMRMRD/MRD HDF5 (a group with ``xml`` / ``data``): ``io.ismrmrd_reader``;
* Siemens twix VB/VD/VE (a measurement table or protocol header at the start): ``io.twix_reader``.

Every file becomes a :class:`MeasuredSlice`: one slice of (coils, H, W) k-space with the fastMRI
layout (readout down the rows, phase-encode lines as columns), which entries were measured, whether
the file is fully sampled (then ``--acceleration`` undersamples it) or undersampled as acquired (then
its own pattern is used), and the coil noise: from the noise-adjustment scan when the file has one (and
then the k-space is prewhitened, unless told not to), else estimated from the k-space corners.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import UserInputError
from ..physics.mri_noise import NOISE_SCAN, CoilNoise, background_noise, prewhiten, whitening_matrix
from .kspace_grid import grid_slice, partial_fourier

FASTMRI, ISMRMRD, TWIX = "fastMRI HDF5", "ISMRMRD/MRD HDF5", "Siemens twix"


@dataclass
class MeasuredSlice:
    """One slice of measured k-space and what is known about it."""

    kspace: torch.Tensor  # (coils, H, W) complex64; prewhitened when ``whitened``
    measured: torch.Tensor  # (H, W) 0/1: entries holding measured data (the rest is zero-filled)
    fully_sampled: bool  # every line inside the acquired extent is there: undersample it here
    slice_index: int
    n_slices: int
    noise: CoilNoise | None  # the coil noise as found (noise scan or corner estimate), before whitening
    noise_in_data: np.ndarray | None  # (coils, coils) noise covariance of ``kspace`` per entry, as returned
    whitened: bool
    whitening: np.ndarray | None = None  # (coils, coils) L^{-1} applied to the coil axis, when whitened
    rss: torch.Tensor | None = None  # fastMRI's reference image, when the file has one
    facts: dict[str, Any] = field(default_factory=dict)


def sniff_kspace_format(path: str | Path) -> str:
    """FASTMRI, ISMRMRD or TWIX from the file's content; a one-line UserInputError otherwise."""
    import h5py

    from .ismrmrd_reader import find_dataset_group
    from .twix_reader import is_twix

    path = Path(path)
    if not path.exists():
        raise UserInputError(f"{path}: no such file")
    if path.is_dir():
        raise UserInputError(f"{path}: is a folder, not a k-space file")
    if h5py.is_hdf5(path):
        try:
            with h5py.File(path, "r") as hf:
                if "kspace" in hf:
                    return FASTMRI
                if find_dataset_group(hf) is not None:
                    return ISMRMRD
                found = ", ".join(sorted(hf.keys())) or "nothing"
        except OSError as exc:  # truncated or corrupt
            raise UserInputError(f"{path}: could not read the HDF5 file, truncated or corrupt ({exc})") from None
        raise UserInputError(f"{path}: no 'kspace' dataset (fastMRI) nor ISMRMRD 'dataset' group (found {found})")
    if is_twix(path):
        return TWIX
    raise UserInputError(f"{path}: not an HDF5 file (fastMRI, ISMRMRD/MRD) nor a Siemens twix .dat file")


def read_measured_kspace(path: str | Path, slice_index: int | None = None, prewhiten_data: bool = True) -> MeasuredSlice:
    """Read slice ``slice_index`` (default: the middle one) of a fastMRI, ISMRMRD or twix file."""
    kind = sniff_kspace_format(path)
    if kind == FASTMRI:
        result = _fastmri(Path(path), slice_index)
    else:
        try:
            result = _raw(Path(path), kind, slice_index, prewhiten_data)
        except OSError as exc:  # an HDF5 file that breaks off while its records are read
            raise UserInputError(f"{path}: could not read the file, truncated or corrupt ({exc})") from None
    result.facts["format"] = result.facts.get("format", kind)
    if not torch.isfinite(torch.view_as_real(result.kspace)).all():
        raise UserInputError(f"{path}: slice {result.slice_index} of the k-space contains NaN or infinite values")
    return result


def _fastmri(path: Path, slice_index: int | None) -> MeasuredSlice:
    from .fastmri import read_fastmri_slice

    data = read_fastmri_slice(path, slice_index)
    coils, h, w = data.kspace.shape
    columns = torch.ones(w) if data.mask is None else data.mask
    measured = columns.reshape(1, w).expand(h, w).contiguous()
    noise = _corner_estimate(data.kspace.numpy(), measured.numpy() > 0)
    return MeasuredSlice(kspace=data.kspace, measured=measured, fully_sampled=data.mask is None,
                         slice_index=data.slice_index, n_slices=data.n_slices, noise=noise,
                         noise_in_data=None if noise is None else noise.covariance, whitened=False, rss=data.rss)


def _corner_estimate(kspace: np.ndarray, measured: np.ndarray) -> CoilNoise | None:
    try:
        return background_noise(kspace, measured)
    except UserInputError:  # too small a matrix: no estimate, said so in the settings
        return None


def _raw(path: Path, kind: str, slice_index: int | None, prewhiten_data: bool) -> MeasuredSlice:
    if kind == ISMRMRD:
        import h5py

        from .ismrmrd_reader import find_dataset_group, read_ismrmrd

        with h5py.File(path, "r") as hf:
            group = find_dataset_group(hf)
        readouts, encoding, noise, info = read_ismrmrd(path, group or "dataset")
    else:
        from .twix_reader import read_twix_file

        readouts, encoding, noise, info = read_twix_file(path)
    grid = grid_slice(readouts, encoding, slice_index, str(path))
    kspace, measured = grid.kspace, grid.measured
    facts: dict[str, Any] = {"format": info.pop("format")}
    facts.update(grid.facts)
    facts.update({k: v for k, v in info.items() if v is not None})
    columns = measured.any(axis=0)
    sampled = np.flatnonzero(columns)
    fully_sampled = bool(columns[sampled[0] : sampled[-1] + 1].all())
    pf = {"phase": partial_fourier(columns), "readout": partial_fourier(measured.any(axis=1))}
    pf = {axis: f for axis, f in pf.items() if f is not None}
    if pf:
        facts["partial_fourier"] = pf
        facts["partial_fourier_handling"] = "zero-filled (the missing part of k-space is left at zero, not estimated)"
    if noise is not None and noise.covariance.shape[0] != kspace.shape[0]:
        raise UserInputError(f"{path}: missing coils: the noise scan has {noise.covariance.shape[0]} coils, "
                             f"the image data {kspace.shape[0]}")
    whitened, whitening = False, None
    if noise is None:
        noise = _corner_estimate(kspace, measured)
        noise_in_data = None if noise is None else noise.covariance
    else:
        # repeats averaged on the grid lower the noise variance by their number (averaged over the lines)
        factor = float(np.mean(1.0 / grid.averages[grid.averages > 0]))
        noise_in_data = noise.covariance * factor
        if prewhiten_data:
            whitening = whitening_matrix(noise.covariance)
            kspace = prewhiten(kspace, whitening)
            noise_in_data = np.eye(kspace.shape[0]) * factor
            whitened = True
        facts["noise_variance_factor_from_averaging"] = round(factor, 6)
    return MeasuredSlice(kspace=torch.from_numpy(kspace), measured=torch.from_numpy(measured.astype(np.float32)),
                         fully_sampled=fully_sampled, slice_index=grid.slice_index, n_slices=grid.n_slices,
                         noise=noise, noise_in_data=noise_in_data, whitened=whitened, whitening=whitening,
                         facts=facts)


__all__ = ["FASTMRI", "ISMRMRD", "NOISE_SCAN", "TWIX", "MeasuredSlice", "read_measured_kspace", "sniff_kspace_format"]
