"""Multi-coil MRI: A = M F S (deepinv's ``MultiCoilMRI``), Cartesian masks at 4x/8x (paper), 15 coils.

Two sources of data:

* ``simulate``: a real magnitude image (DICOM, PNG ...) becomes a complex image with a smooth synthetic
  phase, seen by simulated birdcage coils. This is a simulation, not raw scanner data.
* ``from_measurement``: one slice of measured multi-coil k-space (fastMRI, ISMRMRD/MRD or Siemens twix,
  ``io.raw_mri``), prewhitened with the file's noise scan when it has one, undersampled here when fully
  sampled (the reference is then the fully sampled coil-combined image) or reconstructed with its own
  pattern, with ESPIRiT maps estimated from the auto-calibration lines.

Metrics are on the magnitude divided by the reference's maximum, over the central 320x320 crop (the
whole image when smaller), as fastMRI evaluates.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import deepinv as dinv
import numpy as np
import torch

from ..errors import UserInputError
from ..io.images import load_npy
from ..physics.hints import MeasurementHints
from ..physics.mri import (
    MagnitudeImage,
    birdcage_maps,
    center_crop,
    espirit_maps,
    magnitude,
    smooth_phase,
    to_complex,
    with_phase,
)
from ..physics.mri_masks import (
    SAMPLINGS,
    CartesianMask,
    auto_calibration_width,
    cartesian_mask,
    default_center_fraction,
)
from .base import Problem, Task

if TYPE_CHECKING:  # the tasks declare their flags; only the command line parses them
    import argparse

ESPIRIT_MAX_CALIB = 24  # sigpy's and deepinv's default calibration width
ESPIRIT_MIN_CALIB = 8  # with ESPIRiT's 6x6 kernel, fewer lines give no usable calibration matrix


def read_dicom_magnitude(path: str | Path) -> torch.Tensor:
    """A DICOM magnitude image (the shared reader, ``io.dicom``) as (1, 1, H, W) in [0, 1], divided by its maximum."""
    from ..io.dicom import read_dicom

    pixels = np.clip(read_dicom(path).pixels, 0.0, None)
    peak = float(pixels.max())
    if not np.isfinite(pixels).all() or peak <= 0:
        raise UserInputError(f"{path}: the DICOM image is empty or not finite")
    return torch.from_numpy((pixels / peak).astype(np.float32))[None, None]


def _load_maps(path: str, kspace_shape: tuple[int, ...]) -> torch.Tensor:
    """Coil maps from a .npy file of complex (coils, H, W) matching the k-space."""
    maps = load_npy(path, "--maps")
    if maps.ndim == 4 and maps.shape[0] == 1:
        maps = maps[0]
    if not np.iscomplexobj(maps):
        raise UserInputError(f"--maps {path}: coil maps must be complex, got {maps.dtype}")
    if tuple(maps.shape) != tuple(kspace_shape):
        raise UserInputError(f"--maps {path}: coil maps of shape {tuple(maps.shape)} do not match the k-space "
                             f"(coils, height, width) = {tuple(kspace_shape)}")
    if not np.isfinite(maps).all():
        raise UserInputError(f"--maps {path}: coil maps contain NaN or infinite values")
    return torch.from_numpy(maps.astype(np.complex64))[None]


class MRI(Task):
    name: ClassVar[str] = "mri"
    description: ClassVar[str] = "multi-coil Cartesian MRI from undersampled k-space (A = M F S)"
    network: ClassVar[str] = "medium_unet"
    grayscale: ClassVar[bool | None] = True

    def __init__(self, acceleration: float = 4.0, coils: int = 15, sampling: str = "random",
                 center_fraction: float | None = None, sigma: float = 0.0) -> None:
        self.check(acceleration > 1, f"--acceleration must be greater than 1, got {acceleration:g}")
        self.check(coils >= 1, f"--coils must be at least 1, got {coils}")
        self.check(sampling in SAMPLINGS, f"--sampling must be one of {', '.join(SAMPLINGS)}, got {sampling!r}")
        self.check(center_fraction is None or 0 <= center_fraction < 1,
                   f"--center-fraction must lie in [0, 1), got {center_fraction}")
        self.check(sigma >= 0, f"--sigma must be >= 0, got {sigma:g}")
        self.acceleration, self.coils, self.sampling = acceleration, coils, sampling
        self.center_fraction, self.sigma = center_fraction, sigma

    # ---- command line -------------------------------------------------------------------------
    @staticmethod
    def _sampling_arguments(group: argparse._ArgumentGroup) -> None:
        group.add_argument("--acceleration", type=float, default=None,
                           help="mri: k-space acceleration factor, > 1 (default 4; paper 4 and 8)")
        group.add_argument("--sampling", choices=SAMPLINGS, default=None,
                           help="mri: phase-encode lines outside the centre: random or equispaced (default random)")
        group.add_argument("--center-fraction", type=float, default=None,
                           help="mri: fraction of fully sampled centre lines (default 0.08 below 8x, 0.04 from 8x)")

    @classmethod
    def add_arguments(cls, group: argparse._ArgumentGroup) -> None:
        cls._sampling_arguments(group)
        group.add_argument("--coils", type=int, default=None, help="mri: simulated receive coils (default 15)")

    @classmethod
    def from_options(cls, *, acceleration: float | None = None, coils: int | None = None, sampling: str | None = None,
                     center_fraction: float | None = None, sigma: float | None = None, **other_tasks: Any) -> MRI:
        return cls(acceleration=4.0 if acceleration is None else acceleration, coils=15 if coils is None else coils,
                   sampling=sampling or "random", center_fraction=center_fraction, sigma=0.0 if sigma is None else sigma)

    @classmethod
    def add_reconstruct_arguments(cls, group: argparse._ArgumentGroup) -> None:
        group.add_argument("--kspace", default=None,
                           help="mri: multi-coil k-space, told apart by content: fastMRI .h5, ISMRMRD/MRD .h5 or "
                                "Siemens twix .dat (fully sampled: undersampled here; undersampled: its own pattern)")
        group.add_argument("--slice", type=int, default=None, help="mri: slice index in the file (default: middle)")
        cls._sampling_arguments(group)
        group.add_argument("--maps", default=None, help="mri: coil maps as a complex .npy of shape (coils, H, W) "
                                                        "(default: ESPIRiT from the auto-calibration lines)")
        group.add_argument("--no-prewhiten", action="store_true",
                           help="mri: keep the coils as recorded (default: prewhiten with the file's noise scan, "
                                "when it has one)")

    def settings(self) -> dict[str, Any]:
        fraction = default_center_fraction(self.acceleration) if self.center_fraction is None else self.center_fraction
        return {"acceleration": self.acceleration, "sampling": self.sampling, "center_fraction": fraction,
                "coils": self.coils, "sigma": self.sigma}

    # ---- simulated k-space from a real image ----------------------------------------------------
    def load(self, spec: str, size: int | None = None) -> torch.Tensor:
        """A magnitude image (DICOM, PNG ...) as (1, 1, H, W), or a complex .npy image as (1, 2, H, W)."""
        from ..io.dicom import is_dicom
        from ..io.images import load_complex

        given = load_complex(spec, size)
        if given is not None:
            return given

        if not spec.startswith("skimage:") and is_dicom(spec):
            from ..io.images import resize

            x = read_dicom_magnitude(spec)
            return resize(x, size) if size is not None else x
        return super().load(spec, size=size)

    def draw_mask(self, height: int, width: int, seed: int) -> CartesianMask:
        try:
            return cartesian_mask(height, width, self.acceleration, self.sampling, self.center_fraction,
                                  generator=torch.Generator().manual_seed(seed))
        except ValueError as exc:
            raise UserInputError(str(exc)) from None

    def simulate(self, x: torch.Tensor, seed: int = 0) -> Problem:
        """k-space of ``x`` with birdcage coils; simulated. A real magnitude image (1, 1, H, W) gets a smooth
        random phase; a complex one (1, 2, H, W: real and imaginary parts) keeps its own."""
        self.check(x.dim() == 4 and x.shape[0] == 1 and x.shape[1] in (1, 2),
                   f"mri needs one grey or complex image, got shape {tuple(x.shape)}")
        _, channels, h, w = x.shape
        mask = self.draw_mask(h, w, seed)
        rng = torch.Generator().manual_seed(seed + 1)
        given_phase = channels == 2
        x_true = x.float() if given_phase else with_phase(x.float().cpu(), smooth_phase(h, w, rng)).to(x.device)
        noise = {}
        if self.sigma > 0:
            noise_rng = torch.Generator(device=x.device).manual_seed(seed + 2)
            noise = {"noise_model": dinv.physics.GaussianNoise(self.sigma / 255.0, rng=noise_rng)}
        physics = dinv.physics.MultiCoilMRI(mask=mask.mask.to(x.device), coil_maps=birdcage_maps(self.coils, h, w),
                                            img_size=(h, w), device=x.device, **noise)
        with torch.no_grad():
            y = physics(x_true)
        problem = self.make_problem(physics, y, x_true, to_image=MagnitudeImage.of_reference(x_true),
                                    measurement_label="zero-filled")
        problem.settings.update(mask.settings())
        if given_phase:
            problem.settings.update(data="simulated: the given complex image, birdcage coil maps")
        else:
            problem.settings.update(data="simulated: real magnitude image, smooth synthetic phase, birdcage coil maps",
                                    phase_peak_rad=round(float(np.pi / 2), 4))
        problem.settings["evaluation"] = f"|x| / max|x_ref| over the central {min(h, 320)}x{min(w, 320)}"
        return problem

    # ---- measured k-space: fastMRI, ISMRMRD/MRD or Siemens twix -------------------------------------
    @classmethod
    def from_measurement(cls, *, kspace: str | None = None, slice: int | None = None, maps: str | None = None,
                         no_prewhiten: bool = False, acceleration: float | None = None, sampling: str | None = None,
                         center_fraction: float | None = None, seed: int = 0, **other: Any) -> Problem:
        """The problem of slice ``slice`` (default the middle) of the measured k-space file ``kspace``; a fully
        sampled file is undersampled here (``acceleration``, ``sampling``, ``center_fraction``, mask drawn with
        ``seed``); ``maps`` a .npy of coil maps (default ESPIRiT); ``no_prewhiten`` keeps the coils as recorded."""
        from ..io.raw_mri import read_measured_kspace

        if not kspace:
            raise UserInputError("the mri task reconstructs measured k-space: give --kspace FILE (fastMRI .h5, "
                                 "ISMRMRD/MRD .h5 or Siemens twix .dat)")
        task = cls(acceleration=4.0 if acceleration is None else acceleration, sampling=sampling or "random",
                   center_fraction=center_fraction)
        data = read_measured_kspace(kspace, slice, prewhiten_data=not no_prewhiten)
        slice_index = data.slice_index
        coils, h, w = data.kspace.shape
        full = dinv.physics.MultiCoilMRI.from_torch_complex(data.kspace[None])  # (1, 2, coils, H, W)
        settings: dict[str, Any] = {"kspace_file": str(kspace), "slice": slice_index, "slices": data.n_slices,
                                    "coils": coils, "kspace_shape": [h, w]}
        settings.update(data.facts)
        acquired_columns = data.measured.amax(dim=0)
        if not data.fully_sampled:  # undersampled as acquired: its own pattern, no reference
            mask, fully_sampled = data.measured, False
            lines = int(acquired_columns.sum())
            settings.update(sampling="from the file", sampled_lines=lines, total_lines=w,
                            acceleration_realised=round(w / max(lines, 1), 4))
        else:
            drawn = task.draw_mask(h, w, seed)
            mask, fully_sampled = drawn.mask * data.measured, True
            settings.update({k: v for k, v in task.settings().items() if k not in ("coils", "sigma")})
            settings.update(drawn.settings())
            if not bool(acquired_columns.all()):  # partial Fourier: the drawn lines that were never acquired drop out
                lines = int(mask.amax(dim=0).sum())
                settings.update(sampled_lines=lines, acceleration_realised=round(w / max(lines, 1), 4))
        y = full * mask
        columns = mask[h // 2]
        if maps is not None:
            maps_file = maps
            maps = _load_maps(maps_file, (coils, h, w))
            settings["maps"] = f"from {maps_file}"
            if data.whitening is not None:
                maps = _whiten_maps(maps, data.whitening)
                settings["maps"] += ", prewhitened like the data (L^{-1} S, normalised to sum |S|^2 = 1)"
        else:
            acs = auto_calibration_width(columns)
            if acs < ESPIRIT_MIN_CALIB:
                raise UserInputError(f"only {acs} fully sampled centre lines: too few for ESPIRiT (need "
                                     f"{ESPIRIT_MIN_CALIB}); raise --center-fraction or give --maps")
            calib = min(acs, ESPIRIT_MAX_CALIB, h)
            maps = espirit_maps(y, calib)
            if not bool(maps.abs().amax() > 0):  # too small a calibration region: no eigenvector passes ESPIRiT's threshold
                raise UserInputError(f"ESPIRiT found no coil sensitivity in the {calib}x{calib} calibration region; "
                                     f"raise --center-fraction or give --maps")
            settings["maps"] = f"ESPIRiT (sigpy), {calib}x{calib} calibration from the auto-calibration lines"
        physics = dinv.physics.MultiCoilMRI(mask=mask, coil_maps=maps, img_size=(h, w))
        with torch.no_grad():
            scale = float(magnitude(physics.A_adjoint(y)).max())  # from the measured data only
        if not scale > 0:
            raise UserInputError(f"{kspace}: the measured k-space of slice {slice_index} is all zero")
        y, full = y / scale, full / scale
        settings["kspace_scale"] = scale
        noise_sigma = _record_noise(settings, data, scale)
        x_true = None
        if fully_sampled:
            with torch.no_grad():
                x_true = dinv.physics.MultiCoilMRI(coil_maps=maps, img_size=(h, w)).A_adjoint(full * data.measured)
            to_image = MagnitudeImage.of_reference(x_true)
            settings["reference"] = "fully sampled k-space combined with the same coil maps (S^H F^H y_full)"
            if "partial_fourier" in settings:
                settings["reference"] += ", partial Fourier zero-filled"
        else:
            with torch.no_grad():
                to_image = MagnitudeImage(scale=float(center_crop(magnitude(physics.A_adjoint(y))).max()))
        settings["reference_rss_in_file"] = data.rss is not None
        crop = center_crop(torch.empty(h, w)).shape
        settings["evaluation"] = f"|x| / max|x_ref| over the central {crop[0]}x{crop[1]}"
        problem = task.make_problem(physics, y, x_true, to_image=to_image, measurement_label="zero-filled")
        problem.settings = settings
        if noise_sigma:
            problem.hints = MeasurementHints(noise_sigma=noise_sigma, noise_source=settings["noise_source"])
        problem.extra_outputs = _diagnostics(y, data)
        return problem


def _whiten_maps(maps: torch.Tensor, whitening: np.ndarray) -> torch.Tensor:
    """Sensitivities of the prewhitened coils: L^{-1} S, normalised so sum_c |S_c|^2 = 1 where they are non-zero.

    The whitened coils see the object through L^{-1} S; normalising keeps S^H F^H y an image of the object (as
    ESPIRiT's unit-norm maps of the whitened data do) rather than one weighted by S^H Psi^{-1} S.
    """
    whitened = torch.einsum("ij,bjhw->bihw", torch.from_numpy(whitening.astype(np.complex64)), maps)
    norm = whitened.abs().square().sum(dim=1, keepdim=True).sqrt()
    return torch.where(norm > 0, whitened / norm.clamp_min(1e-30), torch.zeros_like(whitened))


def _record_noise(settings: dict[str, Any], data: Any, scale: float) -> float | None:
    """Noise facts into ``settings``; the noise std per real entry of the scaled y (None when unknown)."""
    from ..physics.mri_noise import noise_sigma

    if data.noise is None:
        settings["noise_source"] = "unknown (too few k-space corner samples to estimate it)"
        return None
    settings["noise_source"] = data.noise.source
    settings["noise_estimate"] = f"{data.noise.note}; {data.noise.samples} coil vectors"
    settings["prewhitened"] = data.whitened
    sigma = noise_sigma(data.noise_in_data, scale)
    settings["noise_sigma"] = sigma
    return sigma


def _diagnostics(y: torch.Tensor, data: Any) -> dict[str, Any]:
    """Figures that show whether the coils and the noise were read right: RSS zero-filled image, covariance."""
    from ..io.outputs import write_npy, write_png
    from ..plots import noise_covariance_figure

    z = to_complex(y.detach().cpu())[0]  # (coils, H, W): the zero-filled coil images, combined by root-sum-of-squares
    coil_images = torch.fft.fftshift(torch.fft.ifft2(torch.fft.ifftshift(z, dim=(-2, -1)), norm="ortho"), dim=(-2, -1))
    rss = center_crop(coil_images.abs().square().sum(0).sqrt())
    peak = float(rss.max()) or 1.0
    outputs: dict[str, Any] = {"coil_combined_zero_filled.png": lambda p: write_png(p, (rss / peak).numpy())}
    if data.noise is not None:
        cov = data.noise.covariance
        title = f"coil noise covariance ({data.noise.source}, before prewhitening)"
        outputs["noise_covariance.png"] = lambda p: noise_covariance_figure(p, cov, title=title)
        outputs["noise_covariance.npy"] = lambda p: write_npy(p, cov.astype(np.complex64))
    return outputs
