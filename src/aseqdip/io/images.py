"""Reading images: files (PNG, JPEG, TIFF, NPY) and images that ship inside packages.

Images come back as float32 tensors of shape (1, C, H, W) in [0, 1]. ``skimage:NAME`` names one of
scikit-image's bundled images (e.g. ``skimage:astronaut``), so demos and tests need no download.

How values become [0, 1], by kind, never silently (a rescale prints a warning line):

* image files (PNG, JPEG, TIFF, BMP): their bit depth: 8-bit / 255, 16-bit / 65535;
* arrays (.npy, scikit-image's): ``bool`` -> 0 / 1; ``uint8`` / 255; any other integer type (``int16``
  Hounsfield units, ``uint16``, ``int64`` ...) mapped linearly from its actual range min..max; floats
  kept when already in [0, 1], else mapped linearly from min..max; NaN or infinite values refused;
* complex arrays: refused, except by tasks whose images are complex (``mri``: :func:`load_complex`).

Layouts: (H, W), (H, W, C) or (C, H, W) with C = 1, 3 or 4 (alpha dropped), or any of these with a
leading axis of 1. Several images in one file (a stack, a multi-frame TIFF) and empty arrays are
refused, as are DICOM files (the ct and mri tasks read those).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import UserInputError
from ..messages import warn
from .dicom import is_dicom

SKIMAGE_PREFIX = "skimage:"


CHANNELS = (1, 3, 4)


def _layout(arr: np.ndarray, source: str) -> np.ndarray:
    """``arr`` as (H, W, C), or a one-line refusal for anything that is not one 2-D image."""
    if arr.size == 0:
        raise UserInputError(f"{source}: the array is empty (shape {arr.shape})")
    while arr.ndim > 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim == 2:
        return arr[..., None]
    if arr.ndim == 3 and arr.shape[-1] in CHANNELS:
        return arr
    if arr.ndim == 3 and arr.shape[0] in CHANNELS:
        return np.moveaxis(arr, 0, -1)
    if arr.ndim in (3, 4):
        raise UserInputError(f"{source}: holds several images or an unknown layout (shape {arr.shape}); expected one "
                             f"image of shape (H, W), (H, W, C) or (C, H, W) with C = 1, 3 or 4")
    raise UserInputError(f"{source}: expected a 2-D grey or colour image, got an array of shape {arr.shape}")


def _to_unit_range(arr: np.ndarray, source: str, bit_depth_known: bool) -> np.ndarray:
    """Values -> float32 in [0, 1] by the rule of the module docstring."""
    if np.iscomplexobj(arr):
        raise UserInputError(f"{source}: complex values ({arr.dtype}); only the mri task takes a complex image")
    if arr.dtype == np.bool_:
        return arr.astype(np.float32)
    if not np.issubdtype(arr.dtype, np.number):
        raise UserInputError(f"{source}: not an array of numbers (dtype {arr.dtype})")
    if arr.dtype.kind == "u" and (arr.dtype.itemsize == 1 or (bit_depth_known and arr.dtype.itemsize == 2)):
        return arr.astype(np.float32) / float(np.iinfo(arr.dtype).max)  # 8-bit, or a 16-bit image file
    values = arr.astype(np.float64)
    if not np.isfinite(values).all():
        raise UserInputError(f"{source}: the image contains NaN or infinite pixels")
    lo, hi = float(values.min()), float(values.max())
    if np.issubdtype(arr.dtype, np.floating) and lo >= 0 and hi <= 1:
        return values.astype(np.float32)
    warn(f"{source}: {arr.dtype} values from {lo:g} to {hi:g} mapped linearly to [0, 1]")
    return ((values - lo) / (hi - lo if hi > lo else 1.0)).astype(np.float32)


def _from_array(arr: np.ndarray, source: str, bit_depth_known: bool = False) -> torch.Tensor:
    arr = _layout(np.asarray(arr), source)
    if arr.shape[-1] == 4:  # drop alpha
        arr = arr[..., :3]
    arr = _to_unit_range(arr, source, bit_depth_known)
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(arr, -1, 0)))[None]


def load_npy(path: str | Path, label: str = "") -> np.ndarray:
    """A .npy array (no pickles), or one clear UserInputError naming ``label`` (e.g. ``--maps``) and the file."""
    name = f"{label} {path}" if label else str(path)
    p = Path(path)
    if not p.exists():
        raise UserInputError(f"{name}: no such file")
    try:
        return np.load(p, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - numpy raises many types for files that are not arrays
        raise UserInputError(f"{name}: not a readable .npy array ({type(exc).__name__})") from None


def read_array(spec: str) -> tuple[np.ndarray, str]:
    """The raw array behind ``spec`` (a path or ``skimage:NAME``) and a name for messages.

    Image files come back as PIL decodes them (see :func:`is_image_file`), arrays as saved.
    """
    if spec.startswith(SKIMAGE_PREFIX):
        import skimage.data

        name = spec[len(SKIMAGE_PREFIX):]
        loader = getattr(skimage.data, name, None)
        if loader is None or not callable(loader):
            raise UserInputError(f"{spec}: scikit-image has no bundled image called {name!r}")
        try:
            return np.asarray(loader()), spec
        except Exception as exc:  # noqa: BLE001 - a data file missing from the installed package
            raise UserInputError(f"{spec}: could not load scikit-image's image ({exc})") from None
    path = Path(spec)
    if not path.exists():
        raise UserInputError(f"{spec}: no such file")
    if path.is_dir():
        raise UserInputError(f"{spec}: is a directory, not an image")
    if path.suffix.lower() == ".npy":
        return load_npy(path), str(path)
    if is_dicom(path):
        raise UserInputError(f"{spec}: a DICOM file; only the ct and mri tasks read DICOM (give this task a PNG, "
                             f"JPEG, TIFF or NPY image)")
    try:
        from PIL import Image

        with Image.open(path) as img:
            frames = int(getattr(img, "n_frames", 1) or 1)
            if frames > 1:
                raise UserInputError(f"{spec}: holds {frames} images (frames); give one image")
            img.load()
            if img.mode not in ("L", "RGB", "RGBA", "I;16", "I", "F"):
                img = img.convert("RGB")
            return np.asarray(img), str(path)
    except UserInputError:
        raise
    except Exception as exc:  # noqa: BLE001 - PIL raises many types for bad files
        raise UserInputError(f"{spec}: not a readable image ({type(exc).__name__})") from None


def is_image_file(spec: str) -> bool:
    """True for image files (PNG, JPEG, TIFF ...), whose values have a bit depth; False for arrays."""
    return not spec.startswith(SKIMAGE_PREFIX) and Path(spec).suffix.lower() != ".npy"


def center_square(x: torch.Tensor) -> torch.Tensor:
    h, w = x.shape[-2:]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return x[..., top : top + s, left : left + s]


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """Centre-crop to a square, then resize to ``size`` x ``size`` (antialiased bicubic, clamped)."""
    if size < 1:
        raise UserInputError(f"size must be a positive number of pixels, got {size}")
    sq = center_square(x)
    if sq.shape[-1] == size:
        return sq.contiguous()
    out = torch.nn.functional.interpolate(sq, size=(size, size), mode="bicubic", antialias=True, align_corners=False)
    return out.clamp(0, 1)


def load_image(spec: str, size: int | None = None, grayscale: bool | None = None) -> torch.Tensor:
    """Load ``spec`` as a (1, C, H, W) tensor in [0, 1]; optionally square-resized and grey/colour-converted."""
    arr, source = read_array(spec)
    x = _from_array(arr, source, bit_depth_known=is_image_file(spec))
    if grayscale is True and x.shape[1] == 3:
        x = (x * torch.tensor([0.2125, 0.7154, 0.0721]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    elif grayscale is False and x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    if size is not None:
        x = resize(x, size)
    return x


def load_complex(spec: str, size: int | None = None) -> torch.Tensor | None:
    """A complex .npy image as (1, 2, H, W), real and imaginary parts, divided by its peak magnitude;
    None when ``spec`` is not a complex array. ``size`` centre-crops and resizes both parts (no clipping)."""
    if spec.startswith(SKIMAGE_PREFIX) or Path(spec).suffix.lower() != ".npy" or not Path(spec).is_file():
        return None
    arr = load_npy(spec)
    if not np.iscomplexobj(arr):
        return None
    arr = _layout(arr, spec)
    if arr.shape[-1] != 1:
        raise UserInputError(f"{spec}: a complex image must have one channel, got shape {arr.shape}")
    z = arr[..., 0].astype(np.complex64)
    if not np.isfinite(z).all():
        raise UserInputError(f"{spec}: the image contains NaN or infinite values")
    peak = float(np.abs(z).max())
    if not peak > 0:
        raise UserInputError(f"{spec}: every pixel is zero")
    x = torch.from_numpy(np.stack([z.real, z.imag]) / peak)[None].float()
    if size is not None:
        if size < 1:
            raise UserInputError(f"size must be a positive number of pixels, got {size}")
        sq = center_square(x)
        if sq.shape[-1] != size:
            sq = torch.nn.functional.interpolate(sq, size=(size, size), mode="bicubic", antialias=True,
                                                 align_corners=False)
        x = sq.contiguous()
    return x
