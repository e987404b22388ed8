"""Siemens twix raw data (.dat, VB and VD/VE): header and readouts, through ``twixtools``.

A twix file is a protocol header (text buffers ``Config``, ``Meas``, ``MeasYaps`` ... with the
ASCCONV protocol) followed by one measurement data block per readout: a header (mdh) with the
evaluation-info flags (noise adjustment, reference lines ...) and the loop counters (line, slice,
partition, average ...), then the samples of every channel. VD/VE files start with a table of the
measurements they hold (often a noise-adjustment measurement before the image one); VB files hold one.

twixtools parses the blocks; this module keeps what Cartesian 2-D gridding needs and checks the file is
complete (every measurement ends with an ACQEND block, and lies inside the file).
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserInputError
from ..physics.mri_noise import NOISE_SCAN, CoilNoise, noise_covariance
from .kspace_grid import Encoding, Readouts

HEADER_BUFFERS = (b"Config", b"Dicom", b"Meas", b"MeasYaps", b"Phoenix", b"Spice")
TRAJECTORIES = {1: "Cartesian", 2: "radial", 4: "spiral", 8: "PROPELLER/BLADE"}
DIMENSION_3D = 4  # sKSpace.ucDimension: 2 for 2-D, 4 for 3-D


def _twixtools() -> Any:
    try:
        import twixtools
    except ImportError:  # pragma: no cover - the raw extra is installed by ./dev
        raise UserInputError("reading Siemens twix files needs 'twixtools': pip install 'aseqdip[raw]'") from None
    return twixtools


def _first_buffer_name(raw: bytes, start: int) -> bool:
    """Whether a twix protocol header (uint32 length, uint32 buffer count, 'Name\\0') starts at ``start``."""
    name = raw[start + 8 : start + 8 + 10]
    return any(name.startswith(b + b"\x00") for b in HEADER_BUFFERS)


def is_twix(path: str | Path) -> bool:
    """Content sniffing: a VD/VE measurement table pointing at a protocol header, or a VB header at byte 0."""
    try:
        with open(path, "rb") as f:
            head = f.read(32)
            if len(head) < 32:
                return False
            first, second = np.frombuffer(head[:8], "<u4")
            if first < 10000 and 1 <= second <= 64:  # VD/VE: MrParcRaidFileHeader, then the first entry
                offset = int(np.frombuffer(head[16:24], "<u8")[0])
                f.seek(offset)
                return _first_buffer_name(f.read(32), 0)
            return _first_buffer_name(head, 0)  # VB: the protocol header is the start of the file
    except OSError:
        return False


def _check_layout(path: Path) -> str:
    """'VD/VE' or 'VB'; refuses a VD/VE file whose measurement table points past its end (truncated)."""
    from twixtools import hdr_def

    size = path.stat().st_size
    with open(path, "rb") as f:
        first, second = np.frombuffer(f.read(8), "<u4")
        if not (first < 10000 and second <= 64):
            return "VB"
        f.seek(0)
        table = np.frombuffer(f.read(hdr_def.MultiRaidFileHeader.itemsize), hdr_def.MultiRaidFileHeader)
    if table.size == 0:
        raise UserInputError(f"{path}: truncated twix file (its measurement table is incomplete)")
    for k, entry in enumerate(table[0]["entry"][: int(second)]):
        if int(entry["off_"]) + int(entry["len_"]) > size:
            raise UserInputError(f"{path}: truncated twix file (measurement {k} should end at byte "
                                 f"{int(entry['off_']) + int(entry['len_'])}, the file has {size})")
    return "VD/VE"


@contextlib.contextmanager
def _with_extension(path: Path) -> Iterator[str]:
    """twixtools appends '.dat' to a name without an extension: give it one through a link when needed."""
    if path.suffix:
        yield str(path)
        return
    with tempfile.TemporaryDirectory() as tmp:
        link = Path(tmp) / "raw.dat"
        os.symlink(path.resolve(), link)
        yield str(link)


def _header(hdr: dict[str, Any], where: str) -> tuple[dict[str, Any], float | None]:
    """sKSpace of the protocol, refusing non-Cartesian and 3-D scans, and the readout oversampling factor."""
    kspace = hdr.get("MeasYaps", {}).get("sKSpace", {}) if isinstance(hdr.get("MeasYaps"), dict) else {}
    trajectory = kspace.get("ucTrajectory")
    if isinstance(trajectory, int) and trajectory != 1:
        raise UserInputError(f"{where}: {TRAJECTORIES.get(trajectory, f'trajectory {trajectory:#x}')} trajectory "
                             f"is not supported; Cartesian 2-D only")
    if kspace.get("ucDimension") == DIMENSION_3D:
        raise UserInputError(f"{where}: 3-D encoding ({kspace.get('lPartitions', '?')} partitions) is not supported; "
                             f"2-D multi-slice Cartesian only")
    oversampling = None
    for section in ("Meas", "Dicom"):
        value = hdr.get(section, {}).get("flReadoutOSFactor") if isinstance(hdr.get(section), dict) else None
        if isinstance(value, (int, float)) and value >= 1:
            oversampling = float(value)
            break
    return kspace, oversampling


def _check_against_header(where: str, kspace: dict[str, Any], oversampling: float | None, line: np.ndarray,
                          samples: np.ndarray, channels: np.ndarray) -> None:
    """Refuse readouts that contradict the protocol: a damaged file (bytes overwritten mid-file) parses into
    readout headers with counters far outside the encoding, or lengths and channel counts that disagree.

    The bounds are generous (twice the encoded lines, four times the oversampled base resolution), so a
    file with phase oversampling or partial Fourier passes; a damaged one is far outside them.
    """
    header_lines = kspace.get("lPhaseEncodingLines")
    if isinstance(header_lines, int) and header_lines > 0 and (line.min() < 0 or line.max() >= 2 * header_lines):
        raise UserInputError(f"{where}: corrupt twix file: a readout's line counter is {int(line.max())}, the protocol "
                             f"encodes {header_lines} lines")
    base = kspace.get("lBaseResolution")
    if isinstance(base, int) and base > 0 and samples.max() > 4 * base * (oversampling or 2.0):
        raise UserInputError(f"{where}: corrupt twix file: a readout holds {int(samples.max())} samples, the protocol's "
                             f"base resolution is {base}")
    if samples.min() < 1:
        raise UserInputError(f"{where}: corrupt twix file: a readout holds no samples")
    if len(set(channels.tolist())) > 1:
        raise UserInputError(f"{where}: missing coils or a corrupt file: the readouts disagree on the channel count "
                             f"({', '.join(str(c) for c in sorted(set(channels.tolist())))})")


def read_twix_file(path: Path) -> tuple[Readouts, Encoding, CoilNoise | None, dict[str, Any]]:
    """Readouts, encoding and noise-scan covariance of a twix file (see the module docstring)."""
    twixtools = _twixtools()
    where = str(path)
    version = _check_layout(path)
    with _with_extension(path) as name, contextlib.redirect_stdout(io.StringIO()):
        try:
            scans = twixtools.read_twix(name, parse_pmu=False, parse_geometry=False, verbose=False, keep_acqend=True,
                                        keep_syncdata=False)
        except (ValueError, OSError, IndexError, KeyError, UnboundLocalError) as exc:
            raise UserInputError(f"{where}: could not read the twix file ({type(exc).__name__}: {exc})") from None
    blocks = [scan.get("mdb", []) for scan in scans]
    if not blocks or any(not b or not b[-1].is_flag_set("ACQEND") for b in blocks):
        raise UserInputError(f"{where}: truncated twix file (a measurement has no end-of-acquisition block)")
    noise = [m for b in blocks for m in b if m.is_flag_set("NOISEADJSCAN")]

    def is_reference(m: Any) -> bool:
        return (m.is_flag_set("PATREFSCAN") and not m.is_flag_set("PATREFANDIMASCAN") and not any(
            m.is_flag_set(f) for f in ("NOISEADJSCAN", "PHASCOR", "PHASESTABSCAN", "REFPHASESTABSCAN", "RTFEEDBACK",
                                       "HPFEEDBACK", "SYNCDATA", "ACQEND", "noname60")))

    images = [k for k, b in enumerate(blocks) if any(m.is_image_scan() for m in b[:-1])]
    if not images:
        raise UserInputError(f"{where}: no image readouts found")
    scan = scans[images[-1]]
    used = [m for m in scan["mdb"][:-1] if m.is_image_scan() or is_reference(m)]
    if any(m.is_flag_set("REFLECT") for m in used):
        raise UserInputError(f"{where}: reversed readouts (EPI-style) are not supported; Cartesian 2-D only")
    kspace_hdr, oversampling = _header(scan.get("hdr", {}), where)
    mdh = [m.mdh for m in used]
    counter = lambda name: np.array([getattr(h.Counter, name) for h in mdh], np.int64)  # noqa: E731
    samples = np.array([h.SamplesInScan for h in mdh], np.int64)
    centre_col = np.array([h.CenterCol for h in mdh], np.int64)
    line = counter("Lin")
    centre_line = int(mdh[0].CenterLin)
    readout = int(np.max(2 * np.maximum(centre_col, samples - centre_col)))
    header_lines = kspace_hdr.get("lPhaseEncodingLines")
    _check_against_header(where, kspace_hdr, oversampling, line, samples, np.array([h.UsedChannels for h in mdh], np.int64))
    lines = max(int(header_lines) if isinstance(header_lines, int) else 0,
                2 * max(centre_line, int(line.max()) + 1 - centre_line))
    base = kspace_hdr.get("lBaseResolution")
    if oversampling is None:
        oversampling = readout / int(base) if isinstance(base, int) and 0 < base < readout else 1.0
    encoding = Encoding(readout=readout, lines=lines, center_line=centre_line, readout_oversampling=oversampling)

    def load(indices: np.ndarray) -> list[np.ndarray]:
        try:
            return [np.array(used[int(i)].data, dtype=np.complex64) for i in indices]
        except (ValueError, OSError) as exc:
            raise UserInputError(f"{where}: truncated or corrupt twix data ({exc})") from None

    readouts = Readouts(line=line, slice=counter("Sli"), partition=counter("Par"), center_sample=centre_col,
                        samples=samples, channels=np.array([h.UsedChannels for h in mdh], np.int64),
                        calibration_only=np.array([is_reference(m) for m in used]), load=load,
                        others={"contrast": counter("Eco"), "phase": counter("Phs"), "set": counter("Set")})
    coil_noise = None
    if noise:
        channels = {m.mdh.UsedChannels for m in noise}
        if len(channels) > 1 or channels != {int(readouts.channels.max())}:
            raise UserInputError(f"{where}: missing coils: the noise readouts hold {sorted(channels)} channels, the "
                                 f"image readouts {int(readouts.channels.max())}")
        try:
            data = np.concatenate([np.array(m.data, np.complex64) for m in noise], axis=1)
        except (ValueError, OSError) as exc:
            raise UserInputError(f"{where}: truncated or corrupt twix noise data ({exc})") from None
        coil_noise = CoilNoise(noise_covariance(data), NOISE_SCAN, data.shape[1],
                               note="covariance of the noise-adjustment readouts (NOISEADJSCAN)")
    info = {"format": f"Siemens twix {version}", "measurements_in_file": len(scans),
            "receiver_channels": int(readouts.channels.max())}
    return readouts, encoding, coil_noise, info
