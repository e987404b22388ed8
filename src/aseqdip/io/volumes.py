"""Reading 3-D volumes: a DICOM series folder, an enhanced multi-frame DICOM, NIfTI, a 3-D .npy, or measured k-space.

Every reader returns a :class:`Volume`: slices as float32 ``(S, H, W)`` in the source's units (Hounsfield
units for CT after the modality rescale, as :mod:`aseqdip.io.dicom` reads one slice), and a 4x4 ``affine``
in NIfTI's convention: voxel ``(i, j, k)`` = (column, row, slice) to RAS millimetres. For DICOM it is
computed from the geometry (``ImageOrientationPatient``, ``ImagePositionPatient``, ``PixelSpacing``),
flipped from DICOM's LPS; without geometry it is a diagonal of the spacings (``geometry_known`` False).

Slice order of a series: ``ImagePositionPatient`` projected on the slice normal (the cross product of the
two ``ImageOrientationPatient`` rows), else ``InstanceNumber``. Measured k-space files (fastMRI,
ISMRMRD/MRD, twix) are read slice by slice later (``kind == "kspace"``): ``data`` is None.

Refused in one line (:class:`UserInputError`) before anything is computed: no such path, a folder with
no DICOM, two series in one folder, slices of mixed sizes or orientations, two slices at one position, a
series that cannot be ordered, 2-D arrays, fewer than two slices, complex or non-finite values.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserInputError
from .dicom import PIXEL_DATA_TAGS, _rescale, is_dicom

NIFTI_SUFFIXES = (".nii", ".nii.gz")
KSPACE_SUFFIXES = (".h5", ".hdf5", ".dat")
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])  # the same flip takes RAS back to LPS


@dataclass
class Volume:
    """A volume of ``n_slices`` slices and where its voxels lie.

    ``data`` is (S, H, W) float32 in the source's units (None for k-space, read per slice). ``template``
    is a DICOM header of the input (no pixels) whose patient and study attributes a DICOM output keeps.
    """

    data: np.ndarray | None
    affine: np.ndarray
    kind: str  # "dicom series", "dicom multi-frame", "nifti", "npy", "kspace"
    source: str
    n_slices: int
    modality: str = ""
    geometry_known: bool = False
    template: Any = None
    slice_thickness: float | None = None

    @property
    def is_dicom(self) -> bool:
        return self.kind.startswith("dicom")

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm: (column step, row step, slice step), the lengths of the affine's columns."""
        return tuple(float(np.linalg.norm(self.affine[:3, c])) for c in range(3))  # type: ignore[return-value]

    def slab(self, start: int, stop: int) -> Volume:
        """Slices ``start`` to ``stop - 1``, the affine moved to the first of them."""
        data = None if self.data is None else self.data[start:stop]
        return replace(self, data=data, affine=slab_affine(self.affine, start), n_slices=stop - start)


def slab_affine(affine: np.ndarray, start: int) -> np.ndarray:
    """The affine of a slab whose first slice is slice ``start``."""
    shift = np.eye(4)
    shift[2, 3] = start
    return affine @ shift


def resampled_affine(affine: np.ndarray, top: int, left: int, factor: float) -> np.ndarray:
    """The affine after cropping at (``top``, ``left``) and resizing by ``factor`` old pixels per new pixel.

    New pixel centre (i', j') lies at old (left + (i' + 1/2) f - 1/2, top + (j' + 1/2) f - 1/2).
    """
    m = np.eye(4)
    m[0, 0] = m[1, 1] = factor
    m[0, 3] = left + 0.5 * factor - 0.5
    m[1, 3] = top + 0.5 * factor - 0.5
    return affine @ m


def read_volume(path: str | Path) -> Volume:
    """The volume at ``path``, told apart by what it is (see the module docstring)."""
    p = Path(path)
    if not p.exists():
        raise UserInputError(f"{path}: no such file or folder")
    if p.is_dir():
        return read_dicom_series(p)
    name = p.name.lower()
    if name.endswith(NIFTI_SUFFIXES):
        return read_nifti(p)
    if name.endswith(".npy"):
        return read_npy_volume(p)
    if is_dicom(p):
        return read_multiframe(p)
    if name.endswith(KSPACE_SUFFIXES):
        return read_kspace_volume(p)
    raise UserInputError(f"{path}: not a volume aseqdip reads (a DICOM series folder, a multi-frame DICOM, NIfTI "
                         f".nii/.nii.gz, a 3-D .npy, or fastMRI k-space .h5)")


def _checked(data: np.ndarray, source: str) -> np.ndarray:
    """(S, H, W) float32, or a one-line refusal: not 3-D, fewer than 2 slices, complex, non-finite."""
    while data.ndim > 3 and data.shape[0] == 1:
        data = data[0]
    if data.ndim == 4 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        what = "a 2-D image" if data.ndim == 2 else f"an array of shape {data.shape}"
        raise UserInputError(f"{source}: {what}, not a volume (slices, height, width); use 'aseqdip run' for one image")
    if data.shape[0] < 2:
        raise UserInputError(f"{source}: holds {data.shape[0]} slice; a volume needs at least 2 (use 'aseqdip run')")
    if min(data.shape) < 1:
        raise UserInputError(f"{source}: the volume is empty (shape {data.shape})")
    if np.iscomplexobj(data) or not (np.issubdtype(data.dtype, np.number) or data.dtype == np.bool_):
        raise UserInputError(f"{source}: expected real numbers, got {data.dtype}")
    data = data.astype(np.float32)
    if not np.isfinite(data).all():
        raise UserInputError(f"{source}: the volume contains NaN or infinite values")
    return data


# ---- NIfTI and NumPy ------------------------------------------------------------------------------
def read_nifti(path: Path) -> Volume:
    """A NIfTI file (nibabel): data (X, Y, Z) becomes slices (Z, Y, X); the file's affine is kept."""
    import nibabel as nib

    try:
        img = nib.load(str(path))
        raw = np.asanyarray(img.dataobj)
    except Exception as exc:  # noqa: BLE001 - nibabel raises many types for bad files
        raise UserInputError(f"{path}: not a readable NIfTI file ({type(exc).__name__})") from None
    if np.iscomplexobj(raw):
        raise UserInputError(f"{path}: complex NIfTI data is not supported")
    if raw.ndim == 4 and raw.shape[-1] == 1:
        raw = raw[..., 0]
    if raw.ndim == 4:  # time points, echoes, diffusion directions: which one is the user's to say
        raise UserInputError(f"{path}: a 4-D NIfTI of shape {raw.shape} ({raw.shape[3]} volumes, e.g. time points); "
                             f"save the one to reconstruct as a 3-D file, e.g. nibabel.save(nibabel.Nifti1Image("
                             f"img.get_fdata()[..., 0], img.affine), 'volume0.nii.gz')")
    if raw.ndim != 3:
        what = "a 2-D image" if raw.ndim == 2 else f"data of shape {raw.shape}"
        raise UserInputError(f"{path}: {what}, not a 3-D volume (X, Y, Z)")
    data = _checked(np.asarray(img.get_fdata(dtype=np.float32)).reshape(raw.shape).transpose(2, 1, 0), str(path))
    return Volume(data=data, affine=np.asarray(img.affine, dtype=np.float64), kind="nifti", source=str(path),
                  n_slices=data.shape[0], geometry_known=True)


def read_npy_volume(path: Path) -> Volume:
    """A 3-D .npy array (slices, height, width); voxels of 1 mm (identity affine)."""
    from .images import load_npy

    data = _checked(load_npy(path), str(path))
    return Volume(data=data, affine=np.eye(4), kind="npy", source=str(path), n_slices=data.shape[0])


def read_kspace_volume(path: Path) -> Volume:
    """Measured multi-coil k-space: only the slice count here; each slice is read when it is reconstructed."""
    from .raw_mri import read_measured_kspace

    first = read_measured_kspace(path, 0)
    if first.n_slices < 2:
        raise UserInputError(f"{path}: holds {first.n_slices} slice; a volume needs at least 2 "
                             f"(use 'aseqdip reconstruct')")
    return Volume(data=None, affine=np.eye(4), kind="kspace", source=str(path), n_slices=first.n_slices,
                  modality="MR")


# ---- DICOM ----------------------------------------------------------------------------------------
def _floats(value: Any, count: int) -> np.ndarray | None:
    try:
        out = np.array([float(v) for v in value], dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return out if out.shape == (count,) and np.isfinite(out).all() else None


def _affine(orientation: np.ndarray | None, positions: list[np.ndarray] | None, pixel_spacing: Any,
            slice_step: float | None) -> tuple[np.ndarray, bool]:
    """RAS affine from DICOM geometry (LPS); a diagonal of the spacings when orientation or positions are missing."""
    spacing = _floats(pixel_spacing, 2) if pixel_spacing is not None else None
    row_mm, col_mm = (float(spacing[0]), float(spacing[1])) if spacing is not None and (spacing > 0).all() else (1.0, 1.0)
    if orientation is None or positions is None:
        return np.diag([col_mm, row_mm, float(slice_step or 1.0), 1.0]), False
    lps = np.eye(4)
    lps[:3, 0] = orientation[:3] * col_mm  # along a row: the column index grows
    lps[:3, 1] = orientation[3:] * row_mm  # down a column: the row index grows
    lps[:3, 2] = (positions[-1] - positions[0]) / (len(positions) - 1)
    lps[:3, 3] = positions[0]
    return LPS_TO_RAS @ lps, True


def _order(orientations: list[np.ndarray | None], positions: list[np.ndarray | None], numbers: list[Any],
           source: str) -> tuple[list[int], bool]:
    """Slice order: by position along the normal when every slice has one (True), else by InstanceNumber."""
    if all(o is not None for o in orientations) and all(p is not None for p in positions):
        first = orientations[0]
        if any(not np.allclose(o, first, atol=1e-4) for o in orientations):
            raise UserInputError(f"{source}: the slices have different orientations (ImageOrientationPatient); "
                                 f"give one stack of parallel slices")
        normal = np.cross(first[:3], first[3:])
        along = [float(np.dot(p, normal)) for p in positions]
        order = sorted(range(len(along)), key=along.__getitem__)
        gaps = np.diff([along[i] for i in order])
        if (np.abs(gaps) < 1e-4).any():
            raise UserInputError(f"{source}: two slices lie at the same position (ImagePositionPatient); give one "
                                 f"series of distinct slices (not several echoes or time points)")
        return order, True
    if any(n is None for n in numbers):
        raise UserInputError(f"{source}: cannot order the slices: some have neither ImagePositionPatient (with "
                             f"ImageOrientationPatient) nor InstanceNumber")
    values = [int(n) for n in numbers]
    if len(set(values)) != len(values):
        raise UserInputError(f"{source}: two slices have the same InstanceNumber and no position to order them by")
    return sorted(range(len(values)), key=values.__getitem__), False


def _header(path: Path) -> Any:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(path, stop_before_pixels=True)
    except InvalidDicomError:
        raise UserInputError(f"{path}: not a DICOM file") from None
    except Exception as exc:  # noqa: BLE001 - truncated or malformed files raise many types
        raise UserInputError(f"{path}: unreadable DICOM file ({type(exc).__name__})") from None


def read_dicom_series(folder: Path) -> Volume:
    """Every DICOM file directly in ``folder``: one series, one size, ordered along the slice normal."""
    from .dicom import read_dicom

    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and is_dicom(p))
    if not files:
        raise UserInputError(f"{folder}: no DICOM files in this folder (a series folder holds one .dcm file per slice)")
    headers = [_header(p) for p in files]
    if len(files) == 1:
        return read_multiframe(files[0])
    series = sorted({str(getattr(h, "SeriesInstanceUID", "")) for h in headers})
    if len(series) > 1:
        raise UserInputError(f"{folder}: holds {len(series)} series (SeriesInstanceUID {', '.join(series[:3])}"
                             f"{' ...' if len(series) > 3 else ''}); give a folder with one series")
    if any(int(getattr(h, "NumberOfFrames", 1) or 1) > 1 for h in headers):
        raise UserInputError(f"{folder}: mixes multi-frame and single-frame files; give the multi-frame file itself")
    sizes: dict[tuple[int, int], int] = {}
    for h in headers:
        size = (int(getattr(h, "Rows", 0) or 0), int(getattr(h, "Columns", 0) or 0))
        sizes[size] = sizes.get(size, 0) + 1
    if len(sizes) > 1:
        found = ", ".join(f"{r}x{c} ({n} files)" for (r, c), n in sorted(sizes.items()))
        raise UserInputError(f"{folder}: slices of different sizes: {found}; give one series of equal slices")
    orientations = [_floats(getattr(h, "ImageOrientationPatient", None) or [], 6) for h in headers]
    positions = [_floats(getattr(h, "ImagePositionPatient", None) or [], 3) for h in headers]
    order, placed = _order(orientations, positions, [getattr(h, "InstanceNumber", None) for h in headers],
                           str(folder))
    data = np.stack([read_dicom(files[i]).pixels for i in order]).astype(np.float32)
    first = headers[order[0]]
    thickness = _positive(getattr(first, "SliceThickness", None))
    if placed:
        affine, known = _affine(orientations[0], [positions[i] for i in order], getattr(first, "PixelSpacing", None), None)
    else:
        step = _positive(getattr(first, "SpacingBetweenSlices", None)) or thickness
        affine, known = _affine(None, None, getattr(first, "PixelSpacing", None), step)
    data = _checked(data, str(folder))
    return Volume(data=data, affine=affine, kind="dicom series", source=str(folder), n_slices=data.shape[0],
                  modality=str(getattr(first, "Modality", "") or ""), geometry_known=known, template=first,
                  slice_thickness=thickness)


def _positive(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if np.isfinite(v) and v > 0 else None


def _frame_item(ds: Any, frame: int, sequence: str) -> Any:
    """``sequence``'s first item for ``frame``, per-frame functional groups first, then the shared ones."""
    for groups, index in ((getattr(ds, "PerFrameFunctionalGroupsSequence", None), frame),
                          (getattr(ds, "SharedFunctionalGroupsSequence", None), 0)):
        if groups and index < len(groups):
            item = getattr(groups[index], sequence, None)
            if item:
                return item[0]
    return None


def read_multiframe(path: Path) -> Volume:
    """An enhanced multi-frame DICOM: frames placed by their functional groups' geometry when they have it."""
    import pydicom

    from .dicom import read_dicom

    header = _header(path)
    frames = int(getattr(header, "NumberOfFrames", 1) or 1)
    if frames < 2:
        raise UserInputError(f"{path}: a single-frame DICOM is one image, not a volume; give the series folder "
                             f"(or use 'aseqdip run' for one slice)")
    read_dicom(path)  # the shared reader's checks: pixel data present, decodable, grey
    ds = pydicom.dcmread(path)
    if not any(tag in ds for tag in PIXEL_DATA_TAGS):
        raise UserInputError(f"{path}: the DICOM file has no pixel data")
    pixels = np.asarray(ds.pixel_array, dtype=np.float64)
    data = np.stack([pixels[f] * _rescale(ds, f)[0] + _rescale(ds, f)[1] for f in range(frames)])
    orientations, positions, spacing, thickness = [], [], None, None
    for f in range(frames):
        plane = _frame_item(ds, f, "PlaneOrientationSequence")
        orientations.append(_floats(getattr(plane, "ImageOrientationPatient", None) or [], 6) if plane else None)
        position = _frame_item(ds, f, "PlanePositionSequence")
        positions.append(_floats(getattr(position, "ImagePositionPatient", None) or [], 3) if position else None)
        measures = _frame_item(ds, f, "PixelMeasuresSequence")
        if measures is not None and spacing is None:
            spacing = getattr(measures, "PixelSpacing", None)
            thickness = _positive(getattr(measures, "SliceThickness", None))
    spacing = spacing if spacing is not None else getattr(ds, "PixelSpacing", None)
    thickness = thickness or _positive(getattr(ds, "SliceThickness", None))
    if all(o is not None for o in orientations) and all(p is not None for p in positions):
        order, _ = _order(orientations, positions, list(range(frames)), str(path))
        affine, known = _affine(orientations[0], [positions[i] for i in order], spacing, None)
        data = data[order]
    else:  # no per-frame geometry: the frames in stored order, spaced by the header's slice spacing
        step = _positive(getattr(ds, "SpacingBetweenSlices", None)) or thickness
        affine, known = _affine(None, None, spacing, step)
    data = _checked(data, str(path))
    return Volume(data=data, affine=affine, kind="dicom multi-frame", source=str(path), n_slices=data.shape[0],
                  modality=str(getattr(ds, "Modality", "") or ""), geometry_known=known, template=header,
                  slice_thickness=thickness)
