"""fastMRI multi-coil HDF5 files: read one slice, and write files in the same layout.

A fastMRI multi-coil file holds ``kspace`` (slices, coils, H, W) complex64 (H = 640 readout rows,
oversampled 2x, for knee), ``reconstruction_rss`` (slices, 320, 320) float32 in training and validation
files, ``mask`` (W,) in test files whose k-space is already undersampled, an ``ismrmrd_header`` XML
string, and attributes such as ``acquisition``, ``max``, ``norm`` and ``patient_id``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from ..errors import UserInputError


class FastMRISlice(NamedTuple):
    """One slice of a multi-coil file."""

    kspace: torch.Tensor  # (coils, H, W) complex64
    rss: torch.Tensor | None  # (h, w) float32 reference from the file, when it has one
    mask: torch.Tensor | None  # (W,) 0/1 when the file's k-space is already undersampled (test sets)
    slice_index: int
    n_slices: int
    attrs: dict[str, Any]


def _attrs(hf: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in hf.attrs.items():
        if isinstance(value, bytes):
            value = value.decode(errors="replace")
        elif isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, (str, int, float, bool)):
            out[key] = value
    return out


def read_fastmri_slice(path: str | Path, slice_index: int | None = None) -> FastMRISlice:
    """Read slice ``slice_index`` (default: the middle one) of a fastMRI multi-coil file.

    Every problem with the file or the index is a UserInputError with one clear line.
    """
    import h5py

    path = Path(path)
    if not path.exists():
        raise UserInputError(f"{path}: no such file")
    if path.is_dir() or not h5py.is_hdf5(path):
        raise UserInputError(f"{path}: not an HDF5 file (expected a fastMRI .h5 file)")
    try:
        with h5py.File(path, "r") as hf:
            if "kspace" not in hf or not isinstance(hf["kspace"], h5py.Dataset):
                found = ", ".join(sorted(hf.keys())) or "nothing"
                raise UserInputError(f"{path}: no 'kspace' dataset (found {found})")
            ds = hf["kspace"]
            if ds.ndim != 4:
                hint = " (single-coil data is not supported)" if ds.ndim == 3 else ""
                raise UserInputError(f"{path}: 'kspace' has shape {tuple(ds.shape)}; expected multi-coil "
                                     f"(slices, coils, height, width){hint}")
            if not np.issubdtype(ds.dtype, np.complexfloating):
                raise UserInputError(f"{path}: 'kspace' holds {ds.dtype}, not complex numbers")
            n_slices = ds.shape[0]
            if slice_index is None:
                slice_index = n_slices // 2
            if not 0 <= slice_index < n_slices:
                raise UserInputError(f"--slice {slice_index} is out of range: {path} has {n_slices} slices "
                                     f"(0 to {n_slices - 1})")
            kspace = torch.from_numpy(np.asarray(ds[slice_index], dtype=np.complex64))
            rss = None
            if "reconstruction_rss" in hf and hf["reconstruction_rss"].ndim == 3:
                if hf["reconstruction_rss"].shape[0] == n_slices:
                    rss = torch.from_numpy(np.asarray(hf["reconstruction_rss"][slice_index], dtype=np.float32))
            mask = None
            if "mask" in hf:
                mask = torch.from_numpy(np.asarray(hf["mask"][()], dtype=np.float32).reshape(-1))
                if mask.numel() != kspace.shape[-1]:
                    raise UserInputError(f"{path}: 'mask' has {mask.numel()} entries but k-space has "
                                         f"{kspace.shape[-1]} columns")
            attrs = _attrs(hf)
    except UserInputError:
        raise
    except OSError as exc:  # truncated or corrupt file
        raise UserInputError(f"{path}: could not read the HDF5 file ({exc})") from None
    if not torch.isfinite(torch.view_as_real(kspace)).all():
        raise UserInputError(f"{path}: slice {slice_index} of 'kspace' contains NaN or infinite values")
    return FastMRISlice(kspace=kspace, rss=rss, mask=mask, slice_index=slice_index, n_slices=n_slices, attrs=attrs)


def write_fastmri(path: str | Path, kspace: np.ndarray, rss: np.ndarray | None = None,
                  mask: np.ndarray | None = None, acquisition: str = "CORPD_FBK") -> None:
    """Write (slices, coils, H, W) complex k-space in fastMRI's multi-coil layout (tests, simulated data)."""
    import h5py

    kspace = np.asarray(kspace)
    if kspace.ndim != 4 or not np.iscomplexobj(kspace):
        raise ValueError("kspace must be a complex array of shape (slices, coils, H, W)")
    h, w = kspace.shape[-2:]
    header = (f'<?xml version="1.0" encoding="utf-8"?><ismrmrdHeader><encoding><encodedSpace><matrixSize>'
              f"<x>{h}</x><y>{w}</y><z>1</z></matrixSize></encodedSpace></encoding></ismrmrdHeader>")
    with h5py.File(path, "w") as hf:
        hf.create_dataset("kspace", data=kspace.astype(np.complex64))
        hf.create_dataset("ismrmrd_header", data=np.bytes_(header))
        if rss is not None:
            hf.create_dataset("reconstruction_rss", data=np.asarray(rss, dtype=np.float32))
            hf.attrs["max"] = float(np.max(rss))
            hf.attrs["norm"] = float(np.linalg.norm(rss))
        if mask is not None:
            hf.create_dataset("mask", data=np.asarray(mask, dtype=bool))
        hf.attrs["acquisition"] = acquisition
        hf.attrs["patient_id"] = "simulated"
