"""Finding the studies of a batch: every image, DICOM slice or fastMRI slice under a folder or glob, or,
with ``--volumes``, every volume (:func:`find_volumes`).

A study is one reconstruction with its own output folder. Image and DICOM files are clean images from
which the task simulates a measurement (as ``aseqdip run`` does); each slice of a fastMRI ``.h5`` file
is measured k-space (as ``aseqdip reconstruct --task mri --kspace FILE --slice K``). Files of other
kinds are skipped and counted; a file that looks like a study but cannot be read still becomes a study,
so that it fails with its own error while the others run.
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserInputError
from ..io.dicom import is_dicom
from ..io.special import is_result_folder, refuse_special

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".npy")
FASTMRI_SUFFIXES = (".h5", ".hdf5")


@dataclass(frozen=True)
class Study:
    """One reconstruction: ``source`` read as an image/DICOM file, or one slice of a fastMRI file."""

    id: str  # the output folder's name, unique within the batch
    source: Path
    slice_index: int | None = None  # fastMRI files only (None there: the file could not be read)
    volume: bool = False  # a whole volume, reconstructed by ``aseqdip volume``

    @property
    def is_kspace(self) -> bool:
        return not self.volume and self.source.suffix.lower() in FASTMRI_SUFFIXES

    @property
    def kind(self) -> str:
        """``volume``, ``kspace`` (a fastMRI slice) or ``image`` (an image or DICOM slice to simulate from)."""
        return "volume" if self.volume else "kspace" if self.is_kspace else "image"

    def describe(self) -> str:
        return f"{self.source}" + (f" slice {self.slice_index}" if self.slice_index is not None else "")


@dataclass(frozen=True)
class Discovery:
    studies: list[Study]
    skipped: list[Path]  # files that are neither images, DICOM nor fastMRI


def find_studies(spec: str, exclude: Path | None = None) -> Discovery:
    """The studies under ``spec`` (a folder, searched recursively, or a glob), in a stable order.

    Hidden files and folders, anything under ``exclude`` (the batch's own output folder) and every folder that
    holds an earlier aseqdip run's or batch's results are ignored; a special file (a FIFO ...) is refused.
    """
    files, root = _files(spec)
    if exclude is not None:
        ex = exclude.resolve()
        files = [f for f in files if ex != f.resolve() and ex not in f.resolve().parents]
    studies: list[Study] = []
    skipped: list[Path] = []
    for path in files:
        rel = path.relative_to(root) if root in path.parents else Path(path.name)
        if path.suffix.lower() in FASTMRI_SUFFIXES:
            count = fastmri_slice_count(path)
            if count is None:  # unreadable: one study that will fail with the reader's message
                studies.append(Study(_name(rel), path))
            else:
                studies.extend(Study(f"{_name(rel)}__slice{k:03d}", path, k) for k in range(count))
        elif path.suffix.lower() in IMAGE_SUFFIXES or is_dicom(path):
            studies.append(Study(_name(rel), path))
        else:
            skipped.append(path)
    if not studies:
        raise UserInputError(f"{spec}: no studies found (images {', '.join(IMAGE_SUFFIXES)}, DICOM, "
                             f"or fastMRI {', '.join(FASTMRI_SUFFIXES)})")
    return Discovery(_unique(studies), skipped)


VOLUME_SUFFIXES = (".nii", ".nii.gz", ".npy", ".dcm", *FASTMRI_SUFFIXES)


def find_volumes(spec: str, exclude: Path | None = None) -> Discovery:
    """The volumes under ``spec``, one study each, in a stable order.

    A folder holds volumes as its entries: each file that can hold a volume (NIfTI, a 3-D ``.npy``, an
    enhanced multi-frame DICOM, a fastMRI file) and each sub-folder with DICOM files in it (a series; its
    own sub-folders are not looked into). A folder whose DICOM files are single-frame slices is itself one
    series, one volume. A glob names the volumes (files or series folders) directly. Whether a file really is a volume
    is for the reader to say: one that is not fails as its own study, with the reader's message.
    """
    path = Path(spec)
    if path.is_dir():
        entries = sorted(e for e in path.iterdir() if not e.name.startswith(".") and not (
            e.is_dir() and is_result_folder(e)))
        for entry in entries:
            refuse_special(entry, "the input folder holds")
        dicoms = [e for e in entries if e.is_file() and is_dicom(e)]
        if dicoms and not all(_multi_frame(d) for d in dicoms):
            entries = [path]  # its DICOM files are slices: the folder is one series
        root = path
    elif path.is_file():
        entries, root = [path], path.parent
    elif glob.has_magic(spec):
        entries = sorted(Path(p) for p in glob.glob(spec, recursive=True) if not Path(p).name.startswith("."))
        if not entries:
            raise UserInputError(f"{spec}: the pattern matches no files or folders")
        root = Path(os.path.commonpath([str(p.parent) for p in entries]))
    else:
        raise UserInputError(f"{spec}: no such file or folder")
    if exclude is not None:
        ex = exclude.resolve()
        entries = [e for e in entries if ex != e.resolve() and ex not in e.resolve().parents]
    studies, skipped = [], []
    for entry in entries:
        if entry.is_dir() and any(f.is_file() and is_dicom(f) for f in entry.iterdir()):
            studies.append(Study(_name(Path(entry.name) if entry == root else entry.relative_to(root)), entry,
                                 volume=True))
        elif entry.is_file() and _volume_file(entry):
            rel = entry.relative_to(root) if root in entry.parents else Path(entry.name)
            studies.append(Study(_name(_no_suffix(rel)), entry, volume=True))
        elif entry.is_file():
            skipped.append(entry)
    if not studies:
        raise UserInputError(f"{spec}: no volumes found (DICOM series folders, NIfTI, 3-D .npy, multi-frame DICOM, "
                             f"fastMRI {', '.join(FASTMRI_SUFFIXES)})")
    return Discovery(_unique(studies), skipped)


def _multi_frame(path: Path) -> bool:
    """True for a DICOM file holding several frames (an enhanced multi-frame image: a volume of its own)."""
    import pydicom

    try:
        return int(getattr(pydicom.dcmread(path, stop_before_pixels=True), "NumberOfFrames", 1) or 1) > 1
    except Exception:  # noqa: BLE001 - an unreadable file is not multi-frame; its reader will say what is wrong
        return False


def _volume_file(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith(VOLUME_SUFFIXES) or (path.suffix == "" and is_dicom(path))


def _no_suffix(rel: Path) -> Path:
    """``a/b.nii.gz`` -> ``a/b.nii`` (``_name`` then drops the last suffix): study names without .nii.gz."""
    return rel.with_name(rel.name[: -len(".gz")]) if rel.name.lower().endswith(".nii.gz") else rel


def _files(spec: str) -> tuple[list[Path], Path]:
    """The files ``spec`` names and the folder their study names are relative to."""
    path = Path(spec)
    if path.is_dir():
        found = []
        for dirpath, dirs, names in os.walk(path):
            here = Path(dirpath)
            if any(part.startswith(".") for part in here.relative_to(path).parts) or (
                    here != path and is_result_folder(here)):
                dirs[:] = []  # hidden, or an earlier run's or batch's results: not studies
                continue
            found += [here / name for name in names if not name.startswith(".")]
        for file in found:
            refuse_special(file, "the input folder holds")
        return sorted(found), path
    if path.is_file():
        return [path], path.parent
    if not glob.has_magic(spec):
        raise UserInputError(f"{spec}: no such file or folder")
    found = sorted(Path(p) for p in glob.glob(spec, recursive=True)
                   if Path(p).is_file() and not Path(p).name.startswith("."))
    if not found:
        raise UserInputError(f"{spec}: the pattern matches no files")
    root = Path(os.path.commonpath([str(p.parent) for p in found]))
    return found, root


def fastmri_slice_count(path: Path) -> int | None:
    """Number of slices in a fastMRI file's ``kspace``, or None when it cannot be read as one."""
    import h5py

    try:
        with h5py.File(path, "r") as hf:
            ds = hf.get("kspace")
            return int(ds.shape[0]) if isinstance(ds, h5py.Dataset) and ds.ndim == 4 else None
    except (OSError, ValueError):
        return None


def _name(rel: Path) -> str:
    """A folder name from a relative path: ``a/b/c.dcm`` -> ``a__b__c``."""
    parts = [*rel.parent.parts, rel.stem] if rel.parent != Path(".") else [rel.stem]
    return re.sub(r"[^A-Za-z0-9._-]+", "_", "__".join(parts)) or "study"


def _unique(studies: list[Study]) -> list[Study]:
    """Keep names unique when two files differ only in their suffix (``a.png``, ``a.dcm``)."""
    seen: dict[str, int] = {}
    for s in studies:
        seen[s.id] = seen.get(s.id, 0) + 1
    out = []
    for s in studies:
        if seen[s.id] > 1:
            suffix = s.source.suffix.lower().lstrip(".")
            s = Study(f"{s.id}_{suffix}" if suffix else s.id, s.source, s.slice_index, s.volume)
        out.append(s)
    names = [s.id for s in out]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})[0]
        raise UserInputError(f"two studies would share the output folder {dup!r}; rename one of the files")
    return out
