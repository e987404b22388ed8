"""Reading one DICOM slice, for any modality, in the scanner's physical units.

:func:`read_dicom` returns the stored pixels after the modality rescale
(``value = stored * RescaleSlope + RescaleIntercept``): Hounsfield units for CT, arbitrary units for
MR. Display or attenuation scaling is left to the caller; :func:`hu_window` is the CT one.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..errors import UserInputError

DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")
PIXEL_DATA_TAGS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")

# Hounsfield window of the CT task: -1000 HU (air) -> 0, +1000 HU (dense bone) -> 1. With -1000 as the
# lower end the windowed value stays proportional to linear attenuation, mu / (2 mu_water).
CT_WINDOW = (-1000.0, 1000.0)


class DicomSlice(NamedTuple):
    """One 2-D slice: ``pixels`` (H, W) float64 after the modality rescale, and the tags that explain it."""

    pixels: np.ndarray
    modality: str
    slope: float
    intercept: float
    pixel_spacing_mm: tuple[float, float] | None
    source: str


def is_dicom(path: str | Path) -> bool:
    """True for a file with a DICOM suffix or the 'DICM' marker after the 128-byte preamble."""
    p = Path(path)
    if p.suffix.lower() in DICOM_SUFFIXES:
        return True
    try:
        with open(p, "rb") as f:
            head = f.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def _rescale(ds: object, frame: int) -> tuple[float, float]:
    """RescaleSlope/Intercept from the top level, or from an enhanced multi-frame file's functional groups."""
    slope, intercept = getattr(ds, "RescaleSlope", None), getattr(ds, "RescaleIntercept", None)
    if slope is None and intercept is None:
        for seq_name, index in (("PerFrameFunctionalGroupsSequence", frame), ("SharedFunctionalGroupsSequence", 0)):
            groups = getattr(ds, seq_name, None)
            if not groups or index >= len(groups):
                continue
            transform = getattr(groups[index], "PixelValueTransformationSequence", None)
            if transform:
                slope = getattr(transform[0], "RescaleSlope", None)
                intercept = getattr(transform[0], "RescaleIntercept", None)
                break
    return float(1.0 if slope is None else slope), float(0.0 if intercept is None else intercept)


def read_dicom(path: str | Path, frame: int = 0) -> DicomSlice:
    """Read frame ``frame`` of a DICOM file; every problem with the file is a one-line :class:`UserInputError`."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    source = str(path)
    p = Path(path)
    if not p.exists():
        raise UserInputError(f"{source}: no such file")
    if p.is_dir():
        raise UserInputError(f"{source}: is a directory, not a DICOM file")
    try:
        ds = pydicom.dcmread(p)
    except InvalidDicomError:
        raise UserInputError(f"{source}: not a DICOM file") from None
    except Exception as exc:  # noqa: BLE001 - truncated or malformed files raise many types
        raise UserInputError(f"{source}: unreadable DICOM file ({type(exc).__name__})") from None
    if not any(tag in ds for tag in PIXEL_DATA_TAGS):
        raise UserInputError(f"{source}: the DICOM file has no pixel data (no image to read)")
    try:
        arr = np.asarray(ds.pixel_array)
    except Exception as exc:  # noqa: BLE001 - missing decoder plugins, corrupt streams
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        how = f" ({syntax.name})" if syntax is not None else ""
        raise UserInputError(f"{source}: cannot decode the DICOM pixel data{how}: {str(exc).splitlines()[0]}") from None
    if int(getattr(ds, "SamplesPerPixel", 1)) != 1:
        raise UserInputError(f"{source}: colour DICOM images are not supported (expected one grey channel)")
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    if frames > 1:
        if not 0 <= frame < frames:
            raise UserInputError(f"{source}: frame {frame} out of range (the file has {frames} frames)")
        arr = arr[frame]
    elif frame != 0:
        raise UserInputError(f"{source}: frame {frame} out of range (the file has 1 frame)")
    if arr.ndim != 2:
        raise UserInputError(f"{source}: expected a 2-D slice, got pixel data of shape {arr.shape}")
    slope, intercept = _rescale(ds, frame)
    pixels = arr.astype(np.float64) * slope + intercept
    spacing = getattr(ds, "PixelSpacing", None)
    spacing_mm = (float(spacing[0]), float(spacing[1])) if spacing is not None and len(spacing) == 2 else None
    if spacing_mm is not None and min(spacing_mm) <= 0:
        spacing_mm = None
    return DicomSlice(pixels=pixels, modality=str(getattr(ds, "Modality", "") or ""), slope=slope,
                      intercept=intercept, pixel_spacing_mm=spacing_mm, source=source)


def hu_window(hu: np.ndarray, low: float = CT_WINDOW[0], high: float = CT_WINDOW[1]) -> np.ndarray:
    """Clip Hounsfield units to [low, high] and map them linearly to [0, 1] (float32)."""
    if not high > low:
        raise UserInputError(f"the HU window needs low < high, got [{low:g}, {high:g}]")
    return np.clip((np.asarray(hu, dtype=np.float64) - low) / (high - low), 0.0, 1.0).astype(np.float32)
