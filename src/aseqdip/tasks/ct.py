"""Sparse-view parallel-beam CT (paper: 512x512 slices, 18 or 30 equispaced views of 180, post-log data).

A clean slice x in [0, 1] (a DICOM slice in Hounsfield units through an HU window, or a PNG/NPY image)
is projected by deepinv's Tomography (``physics/ct.py``) at ``views`` angles equispaced in [0, 180).
The measurement is the post-log sinogram y = A x: noiseless by default, as in the paper (I0 = 1, no
noise), or with Poisson photon noise for ``photons`` = I0 incident photons per ray. The baseline and
aSeqDIP's z_0 is the FBP of y. ``aseqdip reconstruct --task ct`` reads a measured post-log sinogram
and its angles instead.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch

from ..errors import UserInputError
from ..io.dicom import CT_WINDOW, hu_window, is_dicom, read_dicom
from ..io.images import load_npy
from ..physics.ct import MU_AT_ONE_PER_CM, detector_count, equispaced_angles, postlog_with_photon_noise, tomography
from ..physics.hints import MeasurementHints
from .base import Problem, Task

if TYPE_CHECKING:  # the tasks declare their flags; only the command line parses them
    import argparse

# field of view assumed for images without a pixel size (PNG/NPY), for the photon-noise model only
DEFAULT_FOV_MM = 400.0


def _warn(message: str) -> None:
    print(f"aseqdip: warning: {message}", file=sys.stderr)


def pad_to_square(x: torch.Tensor) -> torch.Tensor:
    """Zero-pad (air) a (1, C, H, W) image to a centred square, since the operator needs W x W."""
    h, w = x.shape[-2:]
    s = max(h, w)
    top, left = (s - h) // 2, (s - w) // 2
    return torch.nn.functional.pad(x, (left, s - w - left, top, s - h - top))


def smallest_width(detectors: int) -> int:
    """The smallest image width whose sinogram has at least ``detectors`` cells."""
    width = max(1, int(detectors / 2**0.5) - 1)
    while detector_count(width) < detectors:
        width += 1
    return width


class CT(Task):
    name: ClassVar[str] = "ct"
    description: ClassVar[str] = "sparse-view parallel-beam CT from a post-log sinogram"
    network: ClassVar[str] = "medium_unet"
    grayscale: ClassVar[bool | None] = True

    def __init__(self, views: int = 18, photons: float | None = None,
                 window: tuple[float, float] = CT_WINDOW) -> None:
        self.check(views >= 2, f"--views must be at least 2, got {views}")
        self.check(photons is None or photons > 0, f"--photons must be positive, got {photons}")
        self.check(window[1] > window[0], f"--hu-window needs LOW < HIGH, got {window[0]:g} {window[1]:g}")
        self.views, self.photons, self.window = views, photons, (float(window[0]), float(window[1]))
        self.pixel_mm: float | None = None  # set by load() from the DICOM's PixelSpacing

    # ---- command line -------------------------------------------------------------------------
    @classmethod
    def _add_window(cls, group: argparse._ArgumentGroup) -> None:
        group.add_argument("--hu-window", type=float, nargs=2, metavar=("LOW", "HIGH"), default=None,
                           help=f"ct: Hounsfield window mapped to [0, 1] (default {CT_WINDOW[0]:g} {CT_WINDOW[1]:g})")

    @classmethod
    def add_arguments(cls, group: argparse._ArgumentGroup) -> None:
        group.add_argument("--views", type=int, default=None,
                           help="ct: projection angles equispaced in [0, 180) (default 18, paper 18/30 of 180)")
        group.add_argument("--photons", type=float, default=None,
                           help="ct: incident photons per ray I0 for Poisson noise before the log (default: noiseless)")
        cls._add_window(group)

    @classmethod
    def from_options(cls, *, views: int | None = None, photons: float | None = None,
                     hu_window: Sequence[float] | None = None, **other_tasks: Any) -> CT:
        return cls(views=18 if views is None else views, photons=photons,
                   window=tuple(hu_window) if hu_window is not None else CT_WINDOW)

    @classmethod
    def add_reconstruct_arguments(cls, group: argparse._ArgumentGroup) -> None:
        group.add_argument("--sinogram", default=None,
                           help="ct: post-log sinogram .npy, (detectors, views) or (views, detectors), line "
                                "integrals with one pixel as unit length")
        group.add_argument("--angles-file", default=None,
                           help="ct: the projection angles in degrees (.npy, or text separated by spaces, commas or lines)")
        group.add_argument("--reference", default=None,
                           help="ct: ground-truth slice (DICOM/PNG/NPY) for PSNR/SSIM; it sets the image width")
        cls._add_window(group)

    def settings(self) -> dict[str, Any]:
        return {"views": self.views, "photons": self.photons, "hu_window": list(self.window),
                "measurement": "post-log line integrals (pixel units)"}

    # ---- images ---------------------------------------------------------------------------------
    def load(self, spec: str, size: int | None = None) -> torch.Tensor:
        """A DICOM slice through the HU window, or an image file, as a square (1, 1, W, W) in [0, 1]."""
        from ..io.images import center_square, load_image, resize

        if spec.startswith("skimage:") or not Path(spec).is_file() or not is_dicom(spec):
            x = load_image(spec, size=size, grayscale=True)
            self.pixel_mm = None
            return pad_to_square(x)
        dcm = read_dicom(spec)
        if dcm.modality.upper() == "CT":
            arr = hu_window(dcm.pixels, *self.window)
        else:
            lo, hi = float(dcm.pixels.min()), float(dcm.pixels.max())
            _warn(f"{spec}: modality {dcm.modality or 'unknown'} is not CT, so its values are not Hounsfield units; "
                  "scaling its min..max to [0, 1] instead of the HU window")
            arr = ((dcm.pixels - lo) / (hi - lo if hi > lo else 1.0)).astype(np.float32)
        x = torch.from_numpy(arr)[None, None]
        spacing = dcm.pixel_spacing_mm[1] if dcm.pixel_spacing_mm else None
        if size is not None:
            side = center_square(x).shape[-1]
            x = resize(x, size)
            spacing = spacing * side / size if spacing else None
        else:
            x = pad_to_square(x)
        self.pixel_mm = spacing
        return x

    # ---- simulation ---------------------------------------------------------------------------
    def simulate(self, x: torch.Tensor, seed: int = 0) -> Problem:
        self.check(x.shape[1] == 1, f"the ct task needs a grey image, got {x.shape[1]} channels")
        width = x.shape[-1]
        self.check(x.shape[-2] == width, f"the ct task needs a square image, got {x.shape[-2]}x{width}")
        cells = detector_count(width)
        self.check(self.views <= cells, f"--views {self.views} exceeds the {cells} detector cells of a "
                                        f"{width}x{width} image; use at most {cells}")
        physics = tomography(width, equispaced_angles(self.views), device=x.device)
        with torch.no_grad():
            y = physics.A(x)
        info: dict[str, Any] = {"detectors": cells, "image_width": width}
        if self.photons is not None:
            pixel_mm = self.pixel_mm or DEFAULT_FOV_MM / width
            per_pixel = MU_AT_ONE_PER_CM * pixel_mm / 10.0
            gen = torch.Generator().manual_seed(seed)
            y, zero_fraction = postlog_with_photon_noise(y, self.photons, per_pixel, gen)
            info.update(pixel_mm=pixel_mm, pixel_size_from="DICOM PixelSpacing" if self.pixel_mm else
                        f"assumed {DEFAULT_FOV_MM:g} mm field of view", mu_at_one_per_cm=MU_AT_ONE_PER_CM,
                        zero_count_fraction=zero_fraction)
        problem = self.make_problem(physics, y, x, measurement_label="fbp")
        problem.settings.update(info)
        if self.photons is not None:
            problem.hints = MeasurementHints(photons=self.photons, attenuation_per_pixel=per_pixel)
        return problem

    # ---- measured data ------------------------------------------------------------------------
    @classmethod
    def from_measurement(cls, *, sinogram: str | None = None, angles_file: str | None = None,
                         reference: str | None = None, hu_window: Sequence[float] | None = None,
                         **other: Any) -> Problem:
        if sinogram is None or angles_file is None:
            raise UserInputError("the ct task reconstructs a measured sinogram: give --sinogram FILE.npy "
                                 "and --angles-file FILE")
        angles = read_angles(angles_file)
        sino = read_sinogram(sinogram, len(angles), angles_file)
        task = cls(views=len(angles), window=tuple(hu_window) if hu_window is not None else CT_WINDOW)
        x_true = None
        if reference is not None:
            x_true = task.load(reference)
            width = x_true.shape[-1]
            if detector_count(width) < sino.shape[0]:
                raise UserInputError(f"--reference is {width}x{width}, whose sinogram has {detector_count(width)} "
                                     f"detector cells, fewer than the {sino.shape[0]} of {sinogram}")
        else:
            width = smallest_width(sino.shape[0])
        missing = detector_count(width) - sino.shape[0]
        y = torch.from_numpy(np.pad(sino, ((missing // 2, missing - missing // 2), (0, 0))))[None, None]
        physics = tomography(width, torch.from_numpy(angles.astype(np.float32)))
        problem = task.make_problem(physics, y, x_true, measurement_label="fbp")
        problem.settings.update(detectors=int(sino.shape[0]), detectors_zero_padded=int(missing), image_width=width,
                                sinogram=sinogram, angles_file=angles_file, reference=reference)
        return problem


def read_angles(path: str) -> np.ndarray:
    """Projection angles in degrees from a .npy file or a text file of numbers."""
    p = Path(path)
    if not p.is_file():
        raise UserInputError(f"--angles-file {path}: no such file")
    try:
        if p.suffix.lower() == ".npy":
            angles = np.load(p, allow_pickle=False)
        else:
            text = p.read_text(encoding="utf-8").replace(",", " ").replace(";", " ")
            angles = np.array([float(tok) for tok in text.split()])
        angles = np.asarray(angles, dtype=np.float64)
    except Exception:  # noqa: BLE001 - bad text, bad .npy, non-numeric dtype
        raise UserInputError(f"--angles-file {path}: not a list of numbers (degrees)") from None
    if angles.ndim != 1:
        angles = angles.squeeze()
    if angles.ndim != 1:
        raise UserInputError(f"--angles-file {path}: expected a 1-D list of angles, got shape {angles.shape}")
    if len(angles) < 2:
        raise UserInputError(f"--angles-file {path}: at least 2 angles are needed, got {len(angles)}")
    if not np.isfinite(angles).all():
        raise UserInputError(f"--angles-file {path}: angles contain NaN or infinite values")
    return angles


def read_sinogram(path: str, views: int, angles_path: str) -> np.ndarray:
    """A post-log sinogram as float32 (detectors, views); the layout (views, detectors) is transposed."""
    sino = load_npy(path, "--sinogram")
    if not np.issubdtype(sino.dtype, np.number) or np.iscomplexobj(sino):
        raise UserInputError(f"--sinogram {path}: expected real numbers, got dtype {sino.dtype}")
    while sino.ndim > 2 and sino.shape[0] == 1:
        sino = sino[0]
    if sino.ndim != 2:
        raise UserInputError(f"--sinogram {path}: expected a 2-D sinogram, got shape {sino.shape}")
    if sino.shape[1] != views:
        if sino.shape[0] != views:
            raise UserInputError(f"--sinogram {path} has shape {sino.shape}, which does not match the {views} angles "
                                 f"of {angles_path}: expected (detectors, {views}) or ({views}, detectors)")
        sino = sino.T
    if not np.isfinite(sino).all():
        raise UserInputError(f"--sinogram {path}: the sinogram contains NaN or infinite values")
    if sino.shape[0] < 2:
        raise UserInputError(f"--sinogram {path}: needs at least 2 detector cells, got {sino.shape[0]}")
    return np.ascontiguousarray(sino, dtype=np.float32)
