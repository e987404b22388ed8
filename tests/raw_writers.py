"""Small raw MRI files for the tests, written with each format's own writer.

* ISMRMRD/MRD HDF5: the ``ismrmrd`` package's ``Dataset``, ``Acquisition`` and XML header classes.
* Siemens twix VD/VE: ``twixtools.write_twix`` with ``Mdb_local`` blocks and a protocol header built here.
* Siemens twix VB: twixtools cannot write VB files, so :func:`write_twix_vb` lays the bytes out by hand
  with twixtools' own ``VB17_header`` structure: the protocol header (at least 10000 bytes, which is how
  twixtools tells VB from VD/VE), then for every readout and channel a 128-byte header and the samples,
  then an ACQEND header.

The protocol header of both twix versions is ``uint32 length, uint32 buffer count`` and, per buffer,
``name\\0, uint32 size, text``; the readers need only ``MeasYaps`` (ASCCONV: sKSpace) and ``Meas``
(XProtocol: flReadoutOSFactor).
"""

from __future__ import annotations

import ctypes
import struct
from pathlib import Path
from typing import NamedTuple

import numpy as np


class Readout(NamedTuple):
    """One readout to write: all coils of one phase-encode line of one slice."""

    slice: int
    line: int  # phase-encode counter (k-space centre at ``center_line``)
    data: np.ndarray  # (coils, samples) complex64
    center_sample: int
    average: int = 0
    partition: int = 0
    calibration: bool = False  # a parallel-imaging reference line only (ISMRMRD calibration flag, twix PATREFSCAN)


class Scan(NamedTuple):
    """The encoding of a test scan, as both formats' headers describe it."""

    readout: int  # encoded readout samples, oversampling included
    lines: int  # phase-encode lines
    coils: int
    oversampling: int = 2
    slices: int = 1
    partitions: int = 1  # > 1: a 3-D scan (to be refused)
    trajectory: str = "cartesian"  # or "radial" (to be refused)
    centre_counter: int | None = None  # the line counter of the k-space centre (default lines // 2)

    @property
    def center_line(self) -> int:
        return self.lines // 2 if self.centre_counter is None else self.centre_counter


def centred_fft2(x: np.ndarray) -> np.ndarray:
    """Centred orthonormal 2-D FFT over the last two axes (deepinv's convention)."""
    return np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))


def oversampled_kspace(coil_images: np.ndarray, oversampling: int = 2) -> np.ndarray:
    """(..., coils, H, W) coil images -> k-space of the same object in a field of view ``oversampling`` times
    longer along the readout (rows): the images padded with zero rows (the object fits in the field of view)."""
    h = coil_images.shape[-2]
    full = h * oversampling
    padded = np.zeros((*coil_images.shape[:-2], full, coil_images.shape[-1]), np.complex128)
    start = full // 2 - h // 2
    padded[..., start : start + h, :] = coil_images
    return centred_fft2(padded)


def cartesian_readouts(kspace: np.ndarray, scan: Scan, columns: list[int] | None = None, window: slice | None = None,
                       average: int = 0, calibration: bool = False) -> list[Readout]:
    """Readouts of (slices, coils, X, W) k-space: every listed column of every slice, samples ``window`` of X."""
    window = window or slice(0, kspace.shape[-2])
    columns = list(range(kspace.shape[-1])) if columns is None else columns
    out = []
    for s in range(kspace.shape[0]):
        for j in columns:
            out.append(Readout(slice=s, line=j - scan.lines // 2 + scan.center_line,
                               data=kspace[s, :, window, j].astype(np.complex64),
                               center_sample=kspace.shape[-2] // 2 - window.start, average=average,
                               calibration=calibration))
    return out


def correlated_noise(covariance: np.ndarray, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Complex Gaussian noise (coils, *shape) with coil covariance ``covariance`` (E n n^H)."""
    lower = np.linalg.cholesky(covariance)
    coils = covariance.shape[0]
    z = (rng.standard_normal((coils, *shape)) + 1j * rng.standard_normal((coils, *shape))) / np.sqrt(2)
    return np.einsum("ij,j...->i...", lower, z)


# ---- ISMRMRD ------------------------------------------------------------------------------------------
def ismrmrd_header(scan: Scan) -> str:
    import ismrmrd.xsd as x

    fov = 200.0
    space = lambda nx, fx: x.encodingSpaceType(  # noqa: E731
        matrixSize=x.matrixSizeType(x=nx, y=scan.lines, z=scan.partitions),
        fieldOfView_mm=x.fieldOfViewMm(x=fx, y=fov, z=5.0))
    limits = x.encodingLimitsType(
        kspace_encoding_step_1=x.limitType(minimum=0, maximum=scan.lines - 1, center=scan.center_line),
        slice=x.limitType(minimum=0, maximum=scan.slices - 1, center=0))
    encoding = x.encodingType(encodedSpace=space(scan.readout, fov * scan.oversampling),
                              reconSpace=space(scan.readout // scan.oversampling, fov),
                              encodingLimits=limits, trajectory=x.trajectoryType(scan.trajectory))
    header = x.ismrmrdHeader(experimentalConditions=x.experimentalConditionsType(H1resonanceFrequency_Hz=63_500_000),
                             acquisitionSystemInformation=x.acquisitionSystemInformationType(receiverChannels=scan.coils),
                             encoding=[encoding])
    return header.toXML("utf-8")


def write_ismrmrd(path: Path, scan: Scan, readouts: list[Readout], noise: np.ndarray | None = None,
                  noise_readout: int = 128, dwell_us: float = 5.0, noise_dwell_us: float | None = None) -> Path:
    """An ISMRMRD file: header, noise readouts (``noise`` (coils, n) cut into readouts) first, then ``readouts``."""
    import ismrmrd

    dataset = ismrmrd.Dataset(str(path), "dataset", create_if_needed=True)
    try:
        dataset.write_xml_header(ismrmrd_header(scan))
        counter = 0
        if noise is not None:
            for start in range(0, noise.shape[1], noise_readout):
                acq = ismrmrd.Acquisition.from_array(noise[:, start : start + noise_readout].astype(np.complex64))
                acq.set_flag(ismrmrd.ACQ_IS_NOISE_MEASUREMENT)
                acq.sample_time_us = dwell_us if noise_dwell_us is None else noise_dwell_us
                acq.scan_counter = counter = counter + 1
                dataset.append_acquisition(acq)
        for r in readouts:
            acq = ismrmrd.Acquisition.from_array(np.ascontiguousarray(r.data), center_sample=r.center_sample)
            acq.idx.kspace_encode_step_1 = r.line
            acq.idx.kspace_encode_step_2 = r.partition
            acq.idx.slice = r.slice
            acq.idx.average = r.average
            if r.calibration:
                acq.set_flag(ismrmrd.ACQ_IS_PARALLEL_CALIBRATION)
            acq.sample_time_us = dwell_us
            acq.scan_counter = counter = counter + 1
            dataset.append_acquisition(acq)
    finally:
        dataset.close()
    return path


# ---- Siemens twix ----------------------------------------------------------------------------------------
def twix_protocol(scan: Scan, min_length: int = 0) -> bytes:
    """The protocol header: Config, Meas (XProtocol) and MeasYaps (ASCCONV) buffers."""
    dimension = "0x4" if scan.partitions > 1 else "0x2"
    trajectory = {"cartesian": "0x1", "radial": "0x2"}[scan.trajectory]
    yaps = ("### ASCCONV BEGIN ###\n"
            f"sKSpace.lBaseResolution = {scan.readout // scan.oversampling}\n"
            f"sKSpace.lPhaseEncodingLines = {scan.lines}\n"
            f"sKSpace.lPartitions = {scan.partitions}\n"
            f"sKSpace.ucDimension = {dimension}\n"
            f"sKSpace.ucTrajectory = {trajectory}\n"
            f"sSliceArray.lSize = {scan.slices}\n"
            "### ASCCONV END ###\n")
    meas = f'<ParamDouble."flReadoutOSFactor">  {{ <Precision> 6  {float(scan.oversampling):.6f}  }}\n'
    buffers = {"Config": '<ParamString."tPatientName">  { "xx"  }\n', "Meas": meas, "MeasYaps": yaps}
    body = b"".join(name.encode() + b"\x00" + struct.pack("<I", len(text)) + text.encode()
                    for name, text in buffers.items())
    length = max(8 + len(body), min_length)
    return struct.pack("<II", length, len(buffers)) + body + b"\x00" * (length - 8 - len(body))


def _fill_mdh(mdh: ctypes.Structure, r: Readout | None, scan: Scan, flags: tuple[str, ...]) -> None:
    from twixtools import mdh_def

    if r is not None:
        mdh.Counter.Lin, mdh.Counter.Sli, mdh.Counter.Par, mdh.Counter.Ave = r.line, r.slice, r.partition, r.average
        mdh.CenterCol = r.center_sample
    mdh.CenterLin = scan.center_line
    for flag in flags:
        mdh_def.add_flag(mdh, flag)


def _noise_blocks(noise: np.ndarray | None, size: int) -> list[np.ndarray]:
    return [] if noise is None else [noise[:, s : s + size] for s in range(0, noise.shape[1], size)]


def write_twix_ve(path: Path, scan: Scan, readouts: list[Readout], noise: np.ndarray | None = None,
                  noise_readout: int = 128, separate_noise: bool = True) -> Path:
    """A VD/VE twix file with twixtools' writer; the noise readouts in a measurement of their own (as scanners do)."""
    import twixtools
    from twixtools.mdb import Mdb_local

    def block(data: np.ndarray, r: Readout | None, flags: tuple[str, ...]) -> Mdb_local:
        mdb = Mdb_local(data=np.ascontiguousarray(data, dtype=np.complex64))
        _fill_mdh(mdb.mdh, r, scan, flags)
        return mdb

    def acqend() -> Mdb_local:
        mdb = Mdb_local()
        mdb.add_flag("ACQEND")
        return mdb

    header = np.frombuffer(twix_protocol(scan), dtype="S1")
    noise_blocks = [block(n, None, ("NOISEADJSCAN",)) for n in _noise_blocks(noise, noise_readout)]
    images = [block(r.data, r, ("PATREFSCAN",) if r.calibration else ()) for r in readouts]
    if separate_noise and noise_blocks:
        scans = [{"hdr_str": header, "mdb": [*noise_blocks, acqend()]}, {"hdr_str": header, "mdb": [*images, acqend()]}]
    else:
        scans = [{"hdr_str": header, "mdb": [*noise_blocks, *images, acqend()]}]
    twixtools.write_twix(scans, str(path))
    return path


def write_twix_vb(path: Path, scan: Scan, readouts: list[Readout], noise: np.ndarray | None = None,
                  noise_readout: int = 128) -> Path:
    """A VB twix file laid out by hand (see the module docstring)."""
    from twixtools import mdh_def

    def blocks(data: np.ndarray, r: Readout | None, flags: tuple[str, ...]) -> bytes:
        data = np.ascontiguousarray(data, dtype=np.complex64)
        coils, samples = data.shape
        out = b""
        for c in range(coils):
            mdh = mdh_def.VB17_header()
            _fill_mdh(mdh, r, scan, flags)
            mdh.SamplesInScan, mdh.UsedChannels, mdh.ChannelId = samples, coils, c
            mdh_def.set_dma_len(mdh, coils * (ctypes.sizeof(mdh) + 8 * samples))
            out += bytes(mdh) + data[c].tobytes()
        return out

    parts = [twix_protocol(scan, min_length=10240)]
    parts += [blocks(n, None, ("NOISEADJSCAN",)) for n in _noise_blocks(noise, noise_readout)]
    parts += [blocks(r.data, r, ("PATREFSCAN",) if r.calibration else ()) for r in readouts]
    end = mdh_def.VB17_header()
    mdh_def.add_flag(end, "ACQEND")
    parts.append(bytes(end) + b"\x00" * 16)
    Path(path).write_bytes(b"".join(parts))
    return path


WRITERS = {"ismrmrd": (write_ismrmrd, ".h5"), "twix-ve": (write_twix_ve, ".dat"), "twix-vb": (write_twix_vb, ".dat")}
