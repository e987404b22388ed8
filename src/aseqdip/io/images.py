"""Reading images: files (PNG, JPEG, TIFF, NPY) and images that ship inside packages.

Images come back as float32 tensors of shape (1, C, H, W) in [0, 1]. ``skimage:NAME`` names one of
scikit-image's bundled images (e.g. ``skimage:astronaut``), so demos and tests need no download.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import UserInputError

SKIMAGE_PREFIX = "skimage:"


def _from_array(arr: np.ndarray, source: str) -> torch.Tensor:
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3:
        raise UserInputError(f"{source}: expected a 2-D grey or colour image, got an array of shape {arr.shape}")
    if arr.shape[-1] == 4:  # drop alpha
        arr = arr[..., :3]
    if np.issubdtype(arr.dtype, np.integer):
        arr = arr.astype(np.float32) / float(np.iinfo(arr.dtype).max)
    else:
        arr = arr.astype(np.float32)
        if not np.isfinite(arr).all():
            raise UserInputError(f"{source}: the image contains NaN or infinite pixels")
        lo, hi = float(arr.min()), float(arr.max())
        if lo < 0 or hi > 1:  # floating data in another range: rescale to [0, 1]
            arr = (arr - lo) / (hi - lo if hi > lo else 1.0)
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
    """The raw array behind ``spec`` (a path or ``skimage:NAME``) and a name for messages."""
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
    try:
        from PIL import Image

        with Image.open(path) as img:
            img.load()
            if img.mode not in ("L", "RGB", "RGBA", "I;16", "I", "F"):
                img = img.convert("RGB")
            return np.asarray(img), str(path)
    except Exception as exc:  # noqa: BLE001 - PIL raises many types for bad files
        raise UserInputError(f"{spec}: not a readable image ({type(exc).__name__})") from None


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
    x = _from_array(arr, source)
    if grayscale is True and x.shape[1] == 3:
        x = (x * torch.tensor([0.2125, 0.7154, 0.0721]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    elif grayscale is False and x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    if size is not None:
        x = resize(x, size)
    return x
