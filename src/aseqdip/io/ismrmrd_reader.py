"""ISMRMRD / MRD HDF5 raw data (Gadgetron, siemens_to_ismrmrd and most converters): header and readouts.

An ISMRMRD file holds a group (usually ``/dataset``) with ``xml`` (the header: encoded and recon
matrix, field of view, trajectory, encoding limits, receiver channels) and ``data`` (one compound
record per readout: the acquisition header with its flags and encoding counters, the trajectory and the
interleaved complex samples). The records are read in bulk with h5py (the layout is the ``ismrmrd``
package's ``acquisition_dtype``), the flags and their meaning are the package's constants.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserInputError
from ..physics.mri_noise import NOISE_SCAN, CoilNoise, noise_covariance
from .kspace_grid import Encoding, Readouts


def _ismrmrd() -> Any:
    try:
        import ismrmrd
    except ImportError:  # pragma: no cover - the raw extra is installed by ./dev
        raise UserInputError("reading ISMRMRD files needs the 'ismrmrd' package: pip install 'aseqdip[raw]'") from None
    return ismrmrd


def find_dataset_group(hf: Any) -> str | None:
    """The name of the group holding ISMRMRD ``xml`` and ``data`` (``dataset`` first), or None."""
    import h5py

    names = ["dataset", *[k for k in hf.keys() if k != "dataset"]]
    for name in names:
        group = hf.get(name)
        if isinstance(group, h5py.Group) and ("xml" in group or "data" in group):
            return name
    return None


def _find(node: ET.Element | None, path: str) -> ET.Element | None:
    """Descend ``a/b/c`` ignoring XML namespaces (headers are written with and without one)."""
    for name in path.split("/"):
        if node is None:
            return None
        node = next((child for child in node if child.tag.rsplit("}", 1)[-1] == name), None)
    return node


def _number(node: ET.Element | None, path: str, default: float | None = None) -> float | None:
    found = _find(node, path)
    if found is None or found.text is None:
        return default
    try:
        return float(found.text)
    except ValueError:
        return default


def parse_header(xml: bytes | str, where: str) -> tuple[Encoding, dict[str, Any]]:
    """The first encoding of an ISMRMRD header as an :class:`Encoding`; refuses non-Cartesian and 3-D."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise UserInputError(f"{where}: the ISMRMRD XML header cannot be parsed ({exc})") from None
    enc = _find(root, "encoding")
    if enc is None:
        raise UserInputError(f"{where}: the ISMRMRD header has no <encoding>")
    trajectory = (_find(enc, "trajectory").text or "").strip() if _find(enc, "trajectory") is not None else "cartesian"
    if trajectory.lower() != "cartesian":
        raise UserInputError(f"{where}: {trajectory} trajectory is not supported; Cartesian 2-D only")
    nx, ny, nz = (int(_number(enc, f"encodedSpace/matrixSize/{a}", 0) or 0) for a in "xyz")
    if nx < 1 or ny < 1:
        raise UserInputError(f"{where}: the ISMRMRD header gives no encoded matrix size")
    if nz > 1:
        raise UserInputError(f"{where}: 3-D encoding ({nz} partitions) is not supported; 2-D multi-slice Cartesian only")
    fov_encoded = _number(enc, "encodedSpace/fieldOfView_mm/x")
    fov_recon = _number(enc, "reconSpace/fieldOfView_mm/x")
    oversampling = 1.0
    if fov_encoded and fov_recon and fov_encoded > fov_recon * (1 + 1e-3):
        oversampling = fov_encoded / fov_recon
    center = _number(enc, "encodingLimits/kspace_encoding_step_1/center")
    encoding = Encoding(readout=nx, lines=ny, center_line=int(ny // 2 if center is None else center),
                        readout_oversampling=oversampling)
    system = _find(root, "acquisitionSystemInformation")
    channels = _number(system, "receiverChannels")
    info = {"receiver_channels": None if channels is None else int(channels),
            "receiver_noise_bandwidth": _number(system, "relativeReceiverNoiseBandwidth"),
            "recon_matrix": [int(_number(enc, f"reconSpace/matrixSize/{a}", 0) or 0) for a in "xy"]}
    return encoding, info


def read_ismrmrd(path: Path, group: str) -> tuple[Readouts, Encoding, CoilNoise | None, dict[str, Any]]:
    """Readouts, encoding and noise-scan covariance of an ISMRMRD file (see the module docstring)."""
    import h5py

    mrd = _ismrmrd()
    where = str(path)
    with h5py.File(path, "r") as hf:
        node = hf[group]
        if "xml" not in node or "data" not in node:
            missing = "xml" if "xml" not in node else "data"
            raise UserInputError(f"{where}: the ISMRMRD group '{group}' has no '{missing}'")
        encoding, info = parse_header(node["xml"][0], where)
        head = node["data"].fields("head")[:]
    flags = head["flags"].astype(np.uint64)

    def flag(bit: int) -> np.ndarray:
        return (flags & np.uint64(1 << (bit - 1))) != 0

    noise = flag(mrd.ACQ_IS_NOISE_MEASUREMENT)
    skipped = np.zeros_like(noise)
    for name in ("ACQ_IS_NAVIGATION_DATA", "ACQ_IS_PHASECORR_DATA", "ACQ_IS_HPFEEDBACK_DATA", "ACQ_IS_DUMMYSCAN_DATA",
                 "ACQ_IS_RTFEEDBACK_DATA", "ACQ_IS_SURFACECOILCORRECTIONSCAN_DATA",
                 "ACQ_IS_PHASE_STABILIZATION_REFERENCE", "ACQ_IS_PHASE_STABILIZATION"):
        skipped |= flag(getattr(mrd, name))
    image = ~noise & ~skipped & (head["encoding_space_ref"] == 0)
    if (head["trajectory_dimensions"][image] > 0).any():
        raise UserInputError(f"{where}: readouts carry a k-space trajectory (non-Cartesian); Cartesian 2-D only")
    if flag(mrd.ACQ_IS_REVERSE)[image].any():
        raise UserInputError(f"{where}: reversed readouts (EPI-style) are not supported; Cartesian 2-D only")
    channels = head["active_channels"].astype(np.int64)
    expected = info["receiver_channels"]
    if expected and (channels[image | noise] != int(expected)).any():
        i = int(np.flatnonzero((channels != int(expected)) & (image | noise))[0])
        raise UserInputError(f"{where}: missing coils: acquisition {i} has {channels[i]} of the header's "
                             f"{int(expected)} receiver channels")

    def samples_of(rows: np.ndarray) -> list[np.ndarray]:
        """The (channels, samples) complex data of the records ``rows`` (increasing), checked against their headers."""
        if rows.size == 0:
            return []
        with h5py.File(path, "r") as hf:
            values = hf[group]["data"].fields("data")[rows]
        out = []
        for r, raw in zip(rows, values):
            raw = np.asarray(raw, dtype=np.float32)
            c, n = int(channels[r]), int(head["number_of_samples"][r])
            if raw.size != 2 * c * n:
                raise UserInputError(f"{where}: acquisition {int(r)} holds {raw.size // 2} samples, its header says "
                                     f"{c} x {n} (truncated or corrupt file)")
            out.append(raw.view(np.complex64).reshape(c, n))
        return out

    image_rows = np.flatnonzero(image)
    idx = head["idx"]
    readouts = Readouts(line=idx["kspace_encode_step_1"][image], slice=idx["slice"][image],
                        partition=idx["kspace_encode_step_2"][image], center_sample=head["center_sample"][image],
                        samples=head["number_of_samples"][image], channels=channels[image],
                        calibration_only=flag(mrd.ACQ_IS_PARALLEL_CALIBRATION)[image],
                        load=lambda indices: samples_of(image_rows[indices]),
                        others={k: idx[k][image] for k in ("contrast", "phase", "set")})
    coil_noise = None
    if noise.any():
        if np.unique(channels[noise]).size > 1 or (image.any() and channels[noise][0] != channels[image][0]):
            raise UserInputError(f"{where}: missing coils: the noise readouts hold {channels[noise].min()} to "
                                 f"{channels[noise].max()} channels, the image readouts {channels[image].max()}")
        samples = np.concatenate(samples_of(np.flatnonzero(noise)), axis=1)
        note = "covariance of the noise readouts"
        noise_dwell = float(np.median(head["sample_time_us"][noise]))
        image_dwell = float(np.median(head["sample_time_us"][image])) if image.any() else noise_dwell
        covariance = noise_covariance(samples)
        if noise_dwell > 0 and image_dwell > 0 and not np.isclose(noise_dwell, image_dwell):
            covariance *= noise_dwell / image_dwell  # noise variance grows with the sampling bandwidth, 1 / dwell
            note += f", scaled by the dwell times {noise_dwell:g}/{image_dwell:g} us"
        coil_noise = CoilNoise(covariance, NOISE_SCAN, samples.shape[1], note=note)
    info["format"] = "ISMRMRD/MRD HDF5"
    return readouts, encoding, coil_noise, info
