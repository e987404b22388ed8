"""Cartesian 2-D raw data onto a k-space grid: sort readouts by their counters, place them by the k-space
centre, average repeats, remove readout oversampling, and say what was sampled.

Both raw readers (ISMRMRD/MRD, Siemens twix) reduce their files to :class:`Readouts` (the counters of
every readout and a loader for its samples) and an :class:`Encoding` (the matrix); this module does the
rest the same way for both. The grid follows fastMRI's layout: (coils, readout, phase-encode lines),
with the k-space centre at index (H // 2, W // 2) as deepinv's centred FFT expects.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import UserInputError

OTHER_DIMENSIONS = ("contrast", "phase", "set")  # kept at their first value; averages and repetitions are averaged


@dataclass(frozen=True)
class Encoding:
    """The encoded matrix of a 2-D Cartesian scan."""

    readout: int  # encoded readout samples, oversampling included (X)
    lines: int  # encoded phase-encode lines (W)
    center_line: int  # the phase-encode counter of the k-space centre line
    readout_oversampling: float = 1.0  # X / readout samples after oversampling removal (2 on most scanners)

    @property
    def recon_readout(self) -> int:
        """Readout samples after oversampling removal (H)."""
        return max(1, int(round(self.readout / self.readout_oversampling)))


@dataclass
class Readouts:
    """The image readouts of a file: one entry per readout, in acquisition order."""

    line: np.ndarray  # phase-encode counter
    slice: np.ndarray
    partition: np.ndarray  # second encoding counter: varies only in 3-D scans
    center_sample: np.ndarray  # the sample at the k-space centre of the readout
    samples: np.ndarray  # samples per coil
    channels: np.ndarray  # coils in this readout
    calibration_only: np.ndarray  # parallel-imaging reference lines that are not image lines
    load: Callable[[np.ndarray], list[np.ndarray]]  # indices -> their (coils, samples) complex data
    others: dict[str, np.ndarray] = field(default_factory=dict)  # contrast, phase, set counters


@dataclass
class Gridded:
    """One slice on the grid, and the facts about how it got there."""

    kspace: np.ndarray  # (coils, H, W) complex64, oversampling removed, repeats averaged
    measured: np.ndarray  # (H, W) bool: entries that hold measured data (not zero-filled)
    averages: np.ndarray  # (W,) readouts averaged into each line (0: not measured)
    slice_index: int  # position among the file's slices
    n_slices: int
    facts: dict[str, Any]


def centred_fft(x: np.ndarray, axis: int, inverse: bool = False) -> np.ndarray:
    """Centred orthonormal 1-D FFT along ``axis`` (deepinv's convention, one axis at a time)."""
    transform = np.fft.ifft if inverse else np.fft.fft
    return np.fft.fftshift(transform(np.fft.ifftshift(x, axes=axis), axis=axis, norm="ortho"), axes=axis)


def remove_readout_oversampling(kspace: np.ndarray, height: int) -> np.ndarray:
    """(coils, X, W) -> (coils, ``height``, W): to the image along the readout, keep the centre, back.

    As the scanner does: the oversampled readout widens the field of view, the extra rows of the image
    hold no object and are cropped. With orthonormal FFTs the noise per sample is unchanged.
    """
    full = kspace.shape[1]
    if height >= full:
        return kspace
    image = centred_fft(kspace, axis=1, inverse=True)
    start = full // 2 - height // 2
    return centred_fft(image[:, start : start + height], axis=1)


def _extent(sampled: np.ndarray) -> tuple[int, int]:
    idx = np.flatnonzero(sampled)
    return int(idx[0]), int(idx[-1])


def partial_fourier(sampled: np.ndarray) -> float | None:
    """The fraction of an axis acquired when one end is left out (partial Fourier), else None.

    Partial Fourier leaves out 1/8 to 1/2 of one side; anything missing at one end that is at least
    1/16 of the axis beyond what is missing at the other end counts.
    """
    n = sampled.size
    first, last = _extent(sampled)
    low, high = first, n - 1 - last
    if abs(low - high) >= max(2, n / 16):
        return round((last - first + 1) / n, 4)
    return None


def choose_slice(slices: np.ndarray, requested: int | None, where: str) -> tuple[int, int, int]:
    """(position, counter value, number of slices) of the requested slice (default: the middle one)."""
    values = np.unique(slices)
    n = values.size
    position = n // 2 if requested is None else requested
    if not 0 <= position < n:
        raise UserInputError(f"--slice {position} is out of range: {where} has {n} slices (0 to {n - 1})")
    return position, int(values[position]), n


def grid_slice(readouts: Readouts, encoding: Encoding, requested: int | None, where: str) -> Gridded:
    """Put the readouts of one slice on the (coils, H, W) grid (see the module docstring)."""
    if readouts.line.size == 0:
        raise UserInputError(f"{where}: no image readouts found")
    if np.unique(readouts.partition).size > 1:
        raise UserInputError(f"{where}: 3-D encoding ({np.unique(readouts.partition).size} partitions) is not "
                             f"supported; 2-D multi-slice Cartesian only")
    coils = np.unique(readouts.channels)
    if coils.size > 1:
        raise UserInputError(f"{where}: missing coils: readouts hold {', '.join(map(str, coils))} channels")
    position, value, n_slices = choose_slice(readouts.slice, requested, where)
    keep = readouts.slice == value
    facts: dict[str, Any] = {}
    for name, counter in readouts.others.items():
        present = np.unique(counter[keep])
        if present.size > 1:
            keep &= counter == present[0]
            facts[f"{name}_kept"] = f"{int(present[0])} (the first of {present.size})"
    index = np.flatnonzero(keep)
    width, full = encoding.lines, encoding.readout
    columns = readouts.line[index].astype(np.int64) - encoding.center_line + width // 2
    starts = full // 2 - readouts.center_sample[index].astype(np.int64)
    ends = starts + readouts.samples[index].astype(np.int64)
    bad = (columns < 0) | (columns >= width) | (starts < 0) | (ends > full)
    if bad.any():
        i = index[np.flatnonzero(bad)[0]]
        raise UserInputError(f"{where}: readout {int(i)} (line {int(readouts.line[i])}, {int(readouts.samples[i])} "
                             f"samples centred at {int(readouts.center_sample[i])}) falls outside the encoded "
                             f"{full}x{width} matrix")
    grid = np.zeros((int(coils[0]), full, width), np.complex128)
    count = np.zeros(width, np.int64)
    rows = np.zeros(full, bool)
    calibration = readouts.calibration_only[index]
    image_columns = set(columns[~calibration].tolist())
    used = ~calibration | ~np.isin(columns, list(image_columns))  # reference lines only where no image line is
    for k, data in zip(np.flatnonzero(used), readouts.load(index[used])):
        grid[:, starts[k] : ends[k], columns[k]] += data
        count[columns[k]] += 1
        rows[starts[k] : ends[k]] = True
    grid[:, :, count > 0] /= count[count > 0]
    facts["calibration_lines_added"] = int(len(set(columns[used & calibration].tolist())))
    height = encoding.recon_readout
    kspace = remove_readout_oversampling(grid, height)
    rows_kept = rows
    if height < full:  # an acquired (oversampled) row r' of the cropped grid lies at X//2 + (r' - H//2) * os
        first, last = _extent(rows)
        where_in_full = full // 2 + (np.arange(height) - height // 2) * encoding.readout_oversampling
        rows_kept = (where_in_full >= first - 1e-6) & (where_in_full <= last + 1e-6)
    measured = rows_kept[:, None] & (count > 0)[None, :]
    facts.update(encoded_matrix=[full, width], readout_oversampling=encoding.readout_oversampling,
                 matrix=[height, width], averages_per_line=[int(count[count > 0].min()), int(count.max())])
    return Gridded(kspace=kspace.astype(np.complex64), measured=measured, averages=count, slice_index=position,
                   n_slices=n_slices, facts=facts)
