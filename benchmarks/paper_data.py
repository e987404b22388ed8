"""The benchmark's data, in one place: which real images stand in for the paper's data sets, and how they
are prepared. Everything ships inside installed packages (scikit-image, pydicom, pydicom-data); nothing is
downloaded. A user's own folders (``--data-images``, ``--data-mri``, ``--data-ct``) replace a list.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aseqdip.errors import UserInputError

# What the paper used and what stands in for it here (printed in the report).
PAPER_DATA = {
    "natural": ("CBSD68 (20 colour photographs, 512x512 in the paper)",
                "colour photographs bundled with scikit-image"),
    "mri": ("fastMRI multi-coil knee k-space, 15 coils, 320x320 (20 scans)",
            "real MR DICOM magnitude slices from pydicom / pydicom-data; multi-coil k-space SIMULATED from them "
            "(smooth synthetic phase, 15 birdcage coil maps, the task's Cartesian mask)"),
    "ct": ("AAPM low-dose CT grand challenge, 512x512 slices (20 scans)",
           "real CT DICOM slices from pydicom / pydicom-data, sinograms simulated (parallel beam, noiseless post-log)"),
}

PREPROCESSING = {
    "natural": "RGB uint8 / 255 -> [0, 1]; centre-crop to a square; antialiased bicubic resize to SIZE x SIZE "
               "(aseqdip.io.images.resize)",
    "mri": "DICOM pixels after RescaleSlope/Intercept, negatives clipped, divided by the slice maximum; centre-crop "
           "to a square; resize to SIZE x SIZE; then the mri task's simulation (its defaults: 15 coils, random "
           "Cartesian lines, centre fraction 0.08 at 4x / 0.04 at 8x)",
    "ct": "DICOM pixels in Hounsfield units through the window [-1000, 1000] HU -> [0, 1]; centre-crop to a "
          "square; resize to SIZE x SIZE (the ct task's loader); first frame of multi-frame files",
    "fastmri": "a fastMRI .h5 file: its middle slice, undersampled here, ESPIRiT coil maps (aseqdip reconstruct); "
               "no resize (metrics on the central 320x320)",
}


@dataclass(frozen=True)
class Item:
    """One test image: ``spec`` is what ``aseqdip run --image`` (or ``reconstruct --kspace``) takes."""

    ident: str  # short id used in run names
    spec: str
    source: str
    native: str  # native size / notes, for the report
    kind: str  # "image" (aseqdip run) or "kspace" (aseqdip reconstruct, fastMRI .h5)


def _pydicom_file(name: str) -> Path:
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name)  # pydicom's own test files are local; a missing one returns None
    if path is None:
        raise FileNotFoundError(name)
    return Path(path)


def _pydicom_data_file(name: str) -> Path:
    import data_store  # the pydicom-data package

    path = Path(data_store.__file__).parent / "data" / name
    if not path.is_file():
        raise FileNotFoundError(name)
    return path


# scikit-image's colour photographs (colorwheel and logo are drawings, so they are left out)
NATURAL = [
    ("astronaut", "512x512"), ("chelsea", "300x451"), ("coffee", "400x600"), ("immunohistochemistry", "512x512"),
    ("motorcycle_left", "500x741, left view of stereo_motorcycle()"), ("rocket", "427x640"),
    ("hubble_deep_field", "872x1000"), ("retina", "1411x1411"),
]
# real MR slices (distinct images; compressed duplicates of the same slice are left out)
MRI = [
    ("MR2_UNCR", "pydicom-data", "1024x1024 shoulder"),
    ("MR-SIEMENS-DICOM-WithOverlays", "pydicom-data", "484x484 abdomen"),
    ("emri_small", "pydicom-data", "64x64 head, frame 1 of 10 (upsampled above 64 px)"),
    ("MR_small", "pydicom", "64x64 (upsampled above 64 px)"),
]
# real CT slices
CT = [
    ("693_UNCR", "pydicom-data", "512x512 head"),
    ("explicit_VR-UN", "pydicom-data", "512x512 abdomen (pancreas)"),
    ("J2K_pixelrep_mismatch", "pydicom", "512x512 head"),
    ("CT_small", "pydicom", "128x128 spine (upsampled above 128 px)"),
    ("eCT_Supplemental", "pydicom-data", "512x512 head, frame 1 of 2"),
]


def motorcycle_png(cache: Path) -> Path:
    """scikit-image's stereo_motorcycle left view written once as a PNG (its loader returns a tuple)."""
    path = cache / "motorcycle_left.png"
    if not path.exists():
        import skimage.data

        from aseqdip.io.outputs import write_png

        cache.mkdir(parents=True, exist_ok=True)
        write_png(path, skimage.data.stereo_motorcycle()[0] / 255.0)
    return path


def builtin_items(group: str, cache: Path) -> list[Item]:
    """The bundled images of ``group`` (natural, mri, ct), in order of preference."""
    items: list[Item] = []
    if group == "natural":
        for name, native in NATURAL:
            spec = str(motorcycle_png(cache)) if name == "motorcycle_left" else f"skimage:{name}"
            items.append(Item(name, spec, "scikit-image", native, "image"))
        return items
    for name, package, native in MRI if group == "mri" else CT:
        path = _pydicom_data_file(f"{name}.dcm") if package == "pydicom-data" else _pydicom_file(f"{name}.dcm")
        items.append(Item(name.replace("-", "_"), str(path), package, native, "image"))
    return items


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".npy")


def folder_items(group: str, folder: str) -> list[Item]:
    """A user's folder: PNG/JPEG/TIFF/NPY for natural images, DICOM for CT, DICOM or fastMRI .h5 for MRI."""
    from aseqdip.io.dicom import is_dicom

    root = Path(folder)
    if not root.is_dir():
        raise UserInputError(f"{folder}: not a folder")
    items = []
    for path in sorted(p for p in root.iterdir() if p.is_file()):
        if group == "mri" and path.suffix.lower() == ".h5":
            items.append(Item(path.stem, str(path), f"user folder {folder}", "fastMRI .h5 (middle slice)", "kspace"))
        elif group in ("mri", "ct") and is_dicom(path):
            items.append(Item(path.stem, str(path), f"user folder {folder}", "DICOM", "image"))
        elif group == "natural" and path.suffix.lower() in IMAGE_SUFFIXES:
            items.append(Item(path.stem, str(path), f"user folder {folder}", path.suffix.lower()[1:], "image"))
    if not items:
        kinds = {"natural": "PNG/JPEG/TIFF/NPY images", "mri": "DICOM slices or fastMRI .h5 files",
                 "ct": "DICOM slices"}[group]
        raise UserInputError(f"{folder}: no {kinds} found")
    return items


TASK_GROUP = {"denoise": "natural", "inpaint": "natural", "deblur": "natural", "mri": "mri", "ct": "ct"}


def data_lists(cache: Path, folders: dict[str, str | None], count: int) -> dict[str, list[Item]]:
    """The first ``count`` images of each group, from the user's folder where one is given."""
    out = {}
    for group in ("natural", "mri", "ct"):
        folder = folders.get(group)
        items = folder_items(group, folder) if folder else builtin_items(group, cache)
        out[group] = items[:count]
    return out
