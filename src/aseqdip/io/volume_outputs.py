"""Writing a reconstructed volume: NIfTI, a DICOM series, a PNG montage and slices.csv.

Each writer takes a path inside a :class:`~aseqdip.io.outputs.StagedOutput`, so a volume's folder
appears as a whole or not at all. The slices are (S, H, W) in the source's units and the affine is the
volume's (NIfTI convention: voxel (column, row, slice) -> RAS mm, :mod:`aseqdip.io.volumes`).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .outputs import atomic_write, write_png
from .volumes import LPS_TO_RAS

# patient and study attributes a DICOM output keeps from its input
KEPT_ATTRIBUTES = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "PatientAge", "StudyInstanceUID",
                   "StudyDate", "StudyTime", "StudyID", "StudyDescription", "AccessionNumber",
                   "ReferringPhysicianName", "FrameOfReferenceUID", "BodyPartExamined", "PatientPosition",
                   "Manufacturer", "InstitutionName")


def write_nifti(path: Path, slices: np.ndarray, affine: np.ndarray) -> None:
    """``slices`` (S, H, W) as a float32 NIfTI of (X, Y, Z) = (W, H, S) with ``affine`` (qform and sform);
    gzip-compressed when ``path`` ends in ``.gz``."""
    import nibabel as nib

    img = nib.Nifti1Image(np.ascontiguousarray(slices.transpose(2, 1, 0), dtype=np.float32), affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    img.header.set_xyzt_units("mm")
    data = img.to_bytes()
    if str(path).endswith(".gz"):
        import gzip

        data = gzip.compress(data, compresslevel=6, mtime=0)
    atomic_write(Path(path), lambda f: f.write(data))


def rescale_for(values: np.ndarray, modality: str) -> tuple[float, float]:
    """(RescaleSlope, RescaleIntercept) that fit ``values`` into 16 unsigned bits; CT keeps whole HU (slope 1)."""
    lo, hi = float(values.min()), float(values.max())
    intercept = math.floor(lo)
    if modality.upper() == "CT" and hi - intercept <= 65535:
        return 1.0, float(intercept)
    span = hi - intercept
    return (span / 65535.0 if span > 0 else 1.0), float(intercept)


def write_dicom_series(folder: Path, slices: np.ndarray, affine: np.ndarray, template: Any, modality: str,
                       slice_thickness: float | None, description: str) -> str:
    """One classic DICOM file per slice in ``folder``; returns the new SeriesInstanceUID.

    Geometry comes from ``affine`` (ImagePositionPatient per slice, ImageOrientationPatient, PixelSpacing);
    patient and study attributes from ``template`` (:data:`KEPT_ATTRIBUTES`); values are stored as 16-bit
    integers with RescaleSlope/Intercept (HU for CT). New Series and SOP Instance UIDs.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, MRImageStorage, generate_uid
    from pydicom.valuerep import format_number_as_ds

    def ds_numbers(values: Sequence[float]) -> list[str]:
        return [format_number_as_ds(float(v)) for v in values]

    lps = LPS_TO_RAS @ affine
    col_mm, row_mm = float(np.linalg.norm(lps[:3, 0])), float(np.linalg.norm(lps[:3, 1]))
    orientation = [*(lps[:3, 0] / col_mm), *(lps[:3, 1] / row_mm)]
    slope, intercept = rescale_for(slices, modality)
    stored = np.clip(np.rint((slices.astype(np.float64) - intercept) / slope), 0, 65535).astype("<u2")
    ct = modality.upper() == "CT"
    sop_class = CTImageStorage if ct else MRImageStorage
    series_uid = generate_uid()
    frame_of_reference = str(getattr(template, "FrameOfReferenceUID", "") or "") or generate_uid()
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(slices.shape[0]):
        meta = FileMetaDataset()
        uid = generate_uid()
        meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = sop_class, uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        for name in KEPT_ATTRIBUTES:
            if template is not None and name in template:
                setattr(ds, name, getattr(template, name))
        ds.SOPClassUID, ds.SOPInstanceUID, ds.SeriesInstanceUID = sop_class, uid, series_uid
        ds.FrameOfReferenceUID = frame_of_reference
        ds.Modality = "CT" if ct else "MR"
        ds.SeriesNumber = int(getattr(template, "SeriesNumber", 0) or 0) + 1000
        ds.SeriesDescription = description[:64]
        ds.ImageType = ["DERIVED", "SECONDARY"]
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = ds_numbers((lps @ np.array([0.0, 0.0, k, 1.0]))[:3])
        ds.ImageOrientationPatient = ds_numbers(orientation)
        ds.PixelSpacing = ds_numbers([row_mm, col_mm])
        step = float(np.linalg.norm(lps[:3, 2]))
        ds.SliceThickness = format_number_as_ds(slice_thickness or step)
        ds.SpacingBetweenSlices = format_number_as_ds(step)
        ds.Rows, ds.Columns = int(slices.shape[1]), int(slices.shape[2])
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.RescaleSlope, ds.RescaleIntercept = format_number_as_ds(slope), format_number_as_ds(intercept)
        ds.RescaleType = "HU" if ct else "US"
        ds.PixelData = stored[k].tobytes()
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        data = buf.getvalue()
        atomic_write(folder / f"slice_{k + 1:04d}.dcm", lambda f, data=data: f.write(data))
    return series_uid


def montage(images: np.ndarray, most: int = 64) -> np.ndarray:
    """(S, H, W) images in [0, 1] tiled in a near-square grid (at most ``most``, evenly spaced), 2 px gaps."""
    count = images.shape[0]
    if count > most:
        images = images[np.linspace(0, count - 1, most).round().astype(int)]
        count = most
    cols = math.ceil(math.sqrt(count))
    rows = math.ceil(count / cols)
    h, w = images.shape[1:]
    sheet = np.zeros((rows * (h + 2) - 2, cols * (w + 2) - 2), dtype=np.float32)
    for n, image in enumerate(images):
        r, c = divmod(n, cols)
        sheet[r * (h + 2):r * (h + 2) + h, c * (w + 2):c * (w + 2) + w] = image
    return sheet


def write_montage(path: Path, images: np.ndarray) -> None:
    write_png(path, montage(images))


SLICE_COLUMNS = ("index", "order", "start", "warm_from", "steps", "iteration_returned", "seconds", "wall_seconds",
                 "rule", "stop_reason", "noise_sigma", "noise_source", "psnr", "ssim", "psnr_measurement",
                 "psnr_oracle_best", "iteration_oracle_best")


def write_slices_csv(path: Path, records: Sequence[dict[str, Any]]) -> None:
    """One row per slice (:data:`SLICE_COLUMNS`); blank where a value does not apply (no reference)."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=SLICE_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow({k: ("" if record.get(k) is None else record.get(k)) for k in SLICE_COLUMNS})
    atomic_write(Path(path), lambda f: f.write(text.getvalue().encode()))
