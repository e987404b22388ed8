"""A volume's slices: which ones, in which order, as the task's problems, and the noise level they share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .. import pipeline
from ..errors import UserInputError
from ..io.volumes import Volume, resampled_affine
from ..options import RunOptions, VolumeOptions
from ..physics.hints import SharedNoise
from .defaults import SHARED_NOISE, SHARED_NOISE_SLICES, given_or, volume_options


# ---- which slices, in which order -----------------------------------------------------------------
def slice_range(v: VolumeOptions, n_slices: int) -> tuple[int, int]:
    """[start, stop) of the slices to reconstruct: ``--slab START:STOP``, ``--slices N`` around the middle, or all."""
    slab, count = v.slab, v.slices
    if slab is not None and count is not None:
        raise UserInputError("give --slab or --slices, not both")
    if count is not None:
        if not 1 <= count <= n_slices:
            raise UserInputError(f"--slices {count}: the volume has {n_slices} slices (give 1 to {n_slices})")
        start = (n_slices - count) // 2
        return start, start + count
    if slab is None:
        return 0, n_slices
    try:
        start_text, stop_text = slab.split(":")
        start, stop = int(start_text), int(stop_text)
    except ValueError:
        raise UserInputError(f"--slab {slab}: expected START:STOP, two slice indices (e.g. 0:40)") from None
    if not 0 <= start < stop <= n_slices:
        raise UserInputError(f"--slab {slab}: needs 0 <= START < STOP <= {n_slices} (the volume's slice count)")
    return start, stop


def walk(start: int, stop: int, cold: bool = False) -> list[tuple[int, int | None]]:
    """(slice, neighbour it warm-starts from) from the middle outwards, alternately up and down.

    The middle slice, and every slice when ``cold``, has no neighbour (None).
    """
    middle = (start + stop - 1) // 2
    order: list[tuple[int, int | None]] = [(middle, None)]
    up, down = middle + 1, middle - 1
    while up < stop or down >= start:
        if up < stop:
            order.append((up, None if cold else up - 1))
            up += 1
        if down >= start:
            order.append((down, None if cold else down + 1))
            down -= 1
    return order


# ---- the slices as problems ------------------------------------------------------------------------
@dataclass
class Slices:
    """The volume's slices as the task's problems, and their results back in the source's units.

    Image volumes are mapped to [0, 1] once for the whole volume (CT: the HU window; MRI: divided by the
    volume's maximum magnitude; otherwise its min..max), so every slice has the same scale, and mapped
    back with ``low + x (high - low)``, x clipped to [0, 1] as the task scores it (CT: HU inside the window;
    MRI magnitudes are not clipped). Measured k-space slices come back as |x| times the slice's k-space
    scale (the units of A^H y).
    """

    options: RunOptions
    task: Any
    volume: Volume
    unit: np.ndarray | None  # (S, H, W) in [0, 1], resized; None for k-space
    low: float
    high: float

    def problem(self, k: int) -> Any:
        """The problem of slice ``k`` of the input."""
        if self.unit is None:
            measured = {**self.options.task_options, "kspace": self.volume.source, "slice": k, "maps": None}
            return type(self.task).from_measurement(seed=self.options.seed, **measured)
        x = torch.from_numpy(np.ascontiguousarray(self.unit[k]))[None, None]
        if self.options.task == "ct":
            from ..tasks.ct import pad_to_square

            x = pad_to_square(x)
        return self.task.simulate(x, seed=self.options.seed + k)

    def values(self, image: torch.Tensor, problem: Any) -> np.ndarray:
        """The returned image as (H, W) in the source's units (magnitude for MRI)."""
        x = image.detach().cpu().float()[0]
        plane = x.square().sum(0).sqrt() if self.options.task == "mri" else x[0]
        if self.unit is None:
            return (plane * float(problem.settings["kspace_scale"])).numpy()
        h, w = self.unit.shape[1:]
        top, left = (plane.shape[0] - h) // 2, (plane.shape[1] - w) // 2  # CT's square padding, cropped off
        plane = plane[top:top + h, left:left + w]
        if self.options.task != "mri":  # what the task scores and shows: its [0, 1] image (HU inside the window)
            plane = plane.clamp(0.0, 1.0)
        return (self.low + plane * (self.high - self.low)).numpy().astype(np.float32)

    def display(self, values: np.ndarray) -> np.ndarray:
        """Values mapped to [0, 1] as the volume's scale does (k-space: by the largest value)."""
        if self.unit is None:
            peak = float(values.max())
            return np.clip(values / (peak if peak > 0 else 1.0), 0, 1)
        return np.clip((values - self.low) / (self.high - self.low), 0, 1)


def prepare(options: RunOptions, task: Any, volume: Volume) -> tuple[Slices, np.ndarray]:
    """The input's slices as problems (scaled over the whole input, resized) and their affine.

    The scale comes from the whole input, not the slab, so a slice's problem is the same in every slab.
    """
    from ..io.dicom import CT_WINDOW, hu_window
    from ..io.images import center_square, resize
    from ..messages import warn

    affine = volume.affine
    if volume.data is None:
        if options.task != "mri":
            raise UserInputError(f"{volume.source}: measured k-space is for --task mri, not {options.task}")
        if options.size is not None:
            raise UserInputError("--size does not apply to measured k-space (each slice is reconstructed as measured)")
        return Slices(options, task, volume, None, 0.0, 1.0), affine
    data = volume.data
    if volume.modality.upper() == "CT":
        low, high = task.window if options.task == "ct" else CT_WINDOW
        unit = hu_window(data, low, high)
    else:
        if options.task == "ct":
            warn(f"{volume.source}: modality {volume.modality or 'unknown'} is not CT, so its values are not "
                 f"Hounsfield units; scaling its min..max to [0, 1] instead of the HU window")
        low = 0.0 if options.task == "mri" or float(data.min()) >= 0 else float(data.min())
        high = float(data.max())
        if not high > low:
            raise UserInputError(f"{volume.source}: every voxel has the same value; nothing to reconstruct")
        unit = (np.clip(data, low, None) - low) / (high - low)
    if options.size is not None:
        t = torch.from_numpy(np.ascontiguousarray(unit, dtype=np.float32))[None]
        side = center_square(t).shape[-1]
        top, left = (t.shape[-2] - side) // 2, (t.shape[-1] - side) // 2
        unit = resize(t, options.size)[0].numpy()
        affine = resampled_affine(affine, top, left, side / options.size)
    if options.task == "ct":
        task.pixel_mm = float(np.linalg.norm(affine[:3, 0])) if volume.is_dicom or volume.kind == "nifti" else None
    return Slices(options, task, volume, np.ascontiguousarray(unit, dtype=np.float32), low, high), affine


# ---- the volume's noise level -----------------------------------------------------------------------
def shared_noise(options: RunOptions, slices: Slices, n_slices: int, method: Any) -> SharedNoise | None:
    """One noise level for every slice: the median of the estimates of up to :data:`SHARED_NOISE_SLICES`
    slices spread over the whole input (not the slab, so every slab of a volume uses the same level).

    None when the rule needs no noise level, the user gives it (``--sure-sigma``), ``--no-shared-noise``,
    the task is CT (see :data:`SHARED_NOISE`) or the file carries its own level (a raw scan's noise scan).
    Returns the hint :func:`aseqdip.physics.noise_level.noise_level` reads, with the slices' estimates.
    """
    from ..auto import resolve
    from ..outputrule import needs_noise
    from ..physics.noise_level import noise_level

    _, rule = resolve(method, pipeline.output_rule(options))  # the rule as the slices' plans will resolve it
    if (not given_or(volume_options(options).shared_noise, SHARED_NOISE) or options.task == "ct"
            or not needs_noise(rule) or options.stopping.sure_sigma is not None):
        return None
    picked = sorted({int(round(k)) for k in np.linspace(0, n_slices - 1, min(n_slices, SHARED_NOISE_SLICES))})
    estimates: dict[int, float] = {}
    how = ""
    for k in picked:
        problem = slices.problem(k)
        try:
            level = noise_level(problem.physics, problem.y, prefer="estimate", hints=problem.hints)
        except ValueError:  # this slice has too little to estimate from; the others decide
            continue
        if level.source != "estimate":  # the file's own noise level is better than any estimate
            return None
        estimates[k], how = level.sigma, level.how
    if not estimates:
        return None
    sigma = float(np.median(list(estimates.values())))
    return SharedNoise(sigma, f"median over {len(estimates)} slices of the volume of: {how}",
                       {str(k): round(v, 8) for k, v in estimates.items()})

