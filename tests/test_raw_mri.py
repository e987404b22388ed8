"""Raw scanner data: ISMRMRD/MRD and Siemens twix (VB, VD/VE) files written here with each format's own
writer (tests/raw_writers.py), from a real MR slice with known coil maps and known coil noise covariance.

They check the geometry round trip against the equivalent fastMRI file, averaging, prewhitening (whitened
noise has identity covariance), the noise level without a noise scan, the as-acquired mask, partial
Fourier, the command line end to end, and the one-line refusals.
"""

from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from pydicom.data import get_testdata_file

from aseqdip.cli import main, options_from_argv
from aseqdip.io.fastmri import read_fastmri_slice, write_fastmri
from aseqdip.io.images import resize
from aseqdip.io.raw_mri import ISMRMRD, TWIX, read_measured_kspace, sniff_kspace_format
from aseqdip.physics.mri import birdcage_maps, smooth_phase
from aseqdip.physics.mri_noise import BACKGROUND, NOISE_SCAN, whitening_matrix
from aseqdip.tasks.mri import MRI, read_dicom_magnitude
from raw_writers import (
    WRITERS,
    Readout,
    Scan,
    cartesian_readouts,
    centred_fft2,
    correlated_noise,
    oversampled_kspace,
    write_ismrmrd,
    write_twix_vb,
    write_twix_ve,
)

FORMATS = list(WRITERS)  # ismrmrd, twix-ve, twix-vb
H = W = 32
COILS = 4
# a coil noise covariance with unequal coils and strong correlation between neighbours (Hermitian, positive definite)
_A = np.array([[1.0, 0, 0, 0], [0.6 + 0.3j, 1.2, 0, 0], [0.1, 0.5 - 0.4j, 0.8, 0], [0.2j, 0.1, 0.7 + 0.2j, 1.1]])
PSI = 0.03**2 * (_A @ _A.conj().T)


@pytest.fixture(scope="module")
def phantom():
    """Two slices of a real 32x32 MR image with a smooth phase, seen by 4 birdcage coils."""
    x = resize(read_dicom_magnitude(get_testdata_file("MR_small.dcm")), H)[0, 0].numpy()
    phase = smooth_phase(H, W, torch.Generator().manual_seed(0)).numpy()
    images = np.stack([x * np.exp(1j * phase), 0.6 * x.T * np.exp(-1j * phase)])
    maps = birdcage_maps(COILS, H, W).numpy()
    coil = images[:, None] * maps[None]
    return SimpleNamespace(coil=coil, maps=maps, kspace=centred_fft2(coil), kspace_os=oversampled_kspace(coil, 2),
                           scan=Scan(readout=2 * H, lines=W, coils=COILS, slices=2))


def write(fmt: str, path, scan, readouts, noise=None):
    writer, suffix = WRITERS[fmt]
    return writer(path.with_suffix(suffix), scan, readouts, noise=noise)


def shuffled(readouts: list[Readout], seed: int = 0) -> list[Readout]:
    order = np.random.default_rng(seed).permutation(len(readouts))
    return [readouts[i] for i in order]


# ---- geometry -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_reads_into_the_same_tensors_as_the_fastmri_file(tmp_path, phantom, fmt):
    """Readouts in random order, 2x readout oversampling: sorted, placed, cropped to the fastMRI k-space."""
    path = write(fmt, tmp_path / "scan", phantom.scan, shuffled(cartesian_readouts(phantom.kspace_os, phantom.scan)))
    write_fastmri(tmp_path / "same.h5", phantom.kspace)
    renamed = tmp_path / "no_extension"  # chosen by content, not by the name
    shutil.copy(path, renamed)
    assert sniff_kspace_format(renamed) == (ISMRMRD if fmt == "ismrmrd" else TWIX)
    for s in (0, 1):
        raw = read_measured_kspace(renamed, s)
        reference = read_fastmri_slice(tmp_path / "same.h5", s).kspace
        assert raw.kspace.shape == reference.shape == (COILS, H, W) and raw.kspace.dtype == torch.complex64
        assert torch.allclose(raw.kspace, reference, atol=1e-5 * float(reference.abs().max()))
        assert raw.fully_sampled and bool(raw.measured.bool().all()) and raw.n_slices == 2 and raw.slice_index == s
    assert raw.facts["readout_oversampling"] == 2.0 and raw.facts["encoded_matrix"] == [2 * H, W]
    assert raw.facts["matrix"] == [H, W] and "partial_fourier" not in raw.facts
    assert read_measured_kspace(renamed).slice_index == 1  # the middle slice by default


@pytest.mark.parametrize("fmt", FORMATS)
def test_repeated_acquisitions_are_averaged(tmp_path, phantom, fmt):
    e = correlated_noise(np.eye(COILS), phantom.kspace_os.shape[:1] + phantom.kspace_os.shape[2:],
                         np.random.default_rng(1)).transpose(1, 0, 2, 3)  # (slices, coils, X, W)
    readouts = (cartesian_readouts(phantom.kspace_os + e, phantom.scan, average=0)
                + cartesian_readouts(phantom.kspace_os - e, phantom.scan, average=1))
    raw = read_measured_kspace(write(fmt, tmp_path / "avg", phantom.scan, shuffled(readouts)), 0)
    assert np.allclose(raw.kspace.numpy(), phantom.kspace[0], atol=1e-5 * np.abs(phantom.kspace).max())
    assert raw.facts["averages_per_line"] == [2, 2]


# ---- noise -------------------------------------------------------------------------------------------------
def noisy_scan(phantom, rng):
    """The phantom's oversampled k-space plus coil noise of covariance PSI, and an independent noise scan."""
    shape = phantom.kspace_os.shape
    noise = correlated_noise(PSI, (shape[0], shape[2], shape[3]), rng).transpose(1, 0, 2, 3)
    return phantom.kspace_os + noise, correlated_noise(PSI, (4096,), rng)


@pytest.mark.parametrize("fmt", FORMATS)
def test_noise_scan_prewhitening_gives_identity_noise_covariance(tmp_path, phantom, fmt):
    kspace_os, noise_scan = noisy_scan(phantom, np.random.default_rng(2))
    path = write(fmt, tmp_path / "noisy", phantom.scan, cartesian_readouts(kspace_os, phantom.scan), noise=noise_scan)
    raw = read_measured_kspace(path, 0)
    assert raw.noise.source == NOISE_SCAN and raw.whitened and raw.noise.samples == 4096
    assert np.linalg.norm(raw.noise.covariance - PSI) < 0.1 * np.linalg.norm(PSI)
    whitening = whitening_matrix(raw.noise.covariance)
    assert np.allclose(raw.whitening, whitening) and np.allclose(raw.noise_in_data, np.eye(COILS))
    residual = (raw.kspace.numpy() - np.einsum("ij,jhw->ihw", whitening, phantom.kspace[0])).reshape(COILS, -1)
    whitened_cov = residual @ residual.conj().T / residual.shape[1]  # the image data's own noise, not the scan's
    assert np.abs(whitened_cov - np.eye(COILS)).max() < 0.15, np.round(whitened_cov, 2)
    plain = read_measured_kspace(path, 0, prewhiten_data=False)  # without prewhitening the noise keeps PSI
    residual = (plain.kspace.numpy() - phantom.kspace[0]).reshape(COILS, -1)
    plain_cov = residual @ residual.conj().T / residual.shape[1]
    assert not plain.whitened and np.linalg.norm(plain_cov - PSI) < 0.15 * np.linalg.norm(PSI)
    assert np.abs(plain_cov / PSI[0, 0] - np.eye(COILS)).max() > 0.5


def test_a_noise_scan_at_another_bandwidth_is_scaled_to_the_image_readouts(tmp_path, phantom):
    """Noise variance grows with the sampling bandwidth (1 / dwell time): a scan sampled twice as slowly (dwell
    10 us against 5 us) saw half the variance the image readouts see."""
    noise_scan = correlated_noise(PSI, (4096,), np.random.default_rng(7))
    readouts = cartesian_readouts(phantom.kspace_os, phantom.scan)
    same = read_measured_kspace(write_ismrmrd(tmp_path / "same.h5", phantom.scan, readouts, noise=noise_scan))
    slow = read_measured_kspace(write_ismrmrd(tmp_path / "slow.h5", phantom.scan, readouts, noise=noise_scan,
                                              dwell_us=5.0, noise_dwell_us=10.0))
    assert np.allclose(slow.noise.covariance, 2 * same.noise.covariance) and "dwell" in slow.noise.note


def test_noise_without_a_noise_scan_is_estimated_from_the_kspace_corners(tmp_path, phantom):
    variances = 0.05**2 * np.array([1.0, 1.6, 0.7, 1.2])
    kspace_os, _ = noisy_scan(phantom, np.random.default_rng(3))
    noise = correlated_noise(np.diag(variances), (2, 2 * H, W), np.random.default_rng(4)).transpose(1, 0, 2, 3)
    path = write_ismrmrd(tmp_path / "white.h5", phantom.scan,
                         cartesian_readouts(phantom.kspace_os + noise, phantom.scan))
    raw = read_measured_kspace(path, 0)
    assert raw.noise.source == BACKGROUND and not raw.whitened and raw.whitening is None
    estimated = np.real(np.diag(raw.noise.covariance))
    assert np.all(np.abs(estimated / variances - 1) < 0.4), estimated / variances
    assert abs(np.sqrt(estimated.mean() / variances.mean()) - 1) < 0.15


# ---- as acquired: own pattern, partial Fourier ------------------------------------------------------------------
def test_a_file_undersampled_as_acquired_keeps_its_own_pattern(tmp_path, phantom):
    """Image lines every 3rd column plus separate reference lines in the centre (a GRAPPA-style scan)."""
    image_columns = list(range(0, W, 3))
    reference = list(range(W // 2 - 6, W // 2 + 6))
    readouts = (cartesian_readouts(phantom.kspace_os, phantom.scan, columns=image_columns)
                + cartesian_readouts(phantom.kspace_os, phantom.scan, columns=reference, calibration=True))
    path = write_ismrmrd(tmp_path / "under.h5", phantom.scan, shuffled(readouts))
    raw = read_measured_kspace(path, 1)
    sampled = sorted(set(image_columns) | set(reference))
    assert not raw.fully_sampled
    assert torch.equal(torch.nonzero(raw.measured[0]).flatten(), torch.tensor(sampled))
    assert raw.facts["calibration_lines_added"] == len(set(reference) - set(image_columns))
    unsampled = [j for j in range(W) if j not in sampled]
    assert float(raw.kspace[..., unsampled].abs().max()) == 0.0
    assert np.allclose(raw.kspace.numpy()[..., sampled], phantom.kspace[1][..., sampled], atol=1e-5 * 3)
    out = tmp_path / "rec"
    assert main(["reconstruct", "--task", "mri", "--kspace", str(path), "--iterations", "2", "--no-progress",
                 "--device", "cpu", "--out", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    s = m["task_settings"]
    assert "psnr" not in m and s["sampling"] == "from the file" and s["sampled_lines"] == len(sampled)
    assert s["format"] == ISMRMRD and s["noise_source"] == BACKGROUND and "ESPIRiT" in s["maps"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_partial_fourier_is_zero_filled_and_said_so(tmp_path, phantom, fmt):
    """6/8 of the phase-encode lines, counted from 0 at the first acquired one (centre counter 8, not 16), and an
    asymmetric echo (the last 3/4 of the readout samples, centre sample 16 of 48)."""
    scan = phantom.scan._replace(centre_counter=W // 4)
    columns = list(range(W // 4, W))
    readouts = cartesian_readouts(phantom.kspace_os, scan, columns=columns, window=slice(H // 2, 2 * H))
    assert min(r.line for r in readouts) == 0 and {r.center_sample for r in readouts} == {H // 2}
    path = write(fmt, tmp_path / "pf", scan, shuffled(readouts))
    raw = read_measured_kspace(path, 0)
    assert raw.fully_sampled and raw.facts["partial_fourier"] == {"phase": 0.75, "readout": 0.75}
    assert "zero-filled" in raw.facts["partial_fourier_handling"]
    assert torch.equal(torch.nonzero(raw.measured[:, -1]).flatten(), torch.arange(H // 4, H))  # rows 8..31
    assert torch.equal(torch.nonzero(raw.measured[-1]).flatten(), torch.tensor(columns))
    assert float(raw.kspace[..., : W // 4].abs().max()) == 0.0
    # placed by the centre: the acquired columns hold the phantom's lines (the echo's edge rows are smeared by the
    # oversampling crop, the centre rows are not)
    centre = slice(H // 2 - 4, H // 2 + 4)
    assert np.allclose(raw.kspace.numpy()[:, centre, W // 4 :], phantom.kspace[0][:, centre, W // 4 :],
                       atol=0.02 * np.abs(phantom.kspace).max())
    if fmt != "ismrmrd":
        return
    np.save(tmp_path / "maps.npy", phantom.maps.astype(np.complex64))
    out = tmp_path / "rec"
    assert main(["reconstruct", "--task", "mri", "--kspace", str(path), "--acceleration", "2", "--maps",
                 str(tmp_path / "maps.npy"), "--method", "cs", "--iterations", "2", "--no-progress", "--out", str(out)]) == 0
    s = json.loads((out / "metrics.json").read_text())["task_settings"]
    assert s["partial_fourier"] == {"phase": 0.75, "readout": 0.75} and "partial Fourier zero-filled" in s["reference"]
    assert s["acceleration_realised"] > 2  # the drawn lines that were never acquired drop out


# ---- the command line, end to end ----------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", FORMATS)
def test_cli_reconstructs_each_format_with_a_reference(tmp_path, phantom, fmt):
    kspace_os, noise_scan = noisy_scan(phantom, np.random.default_rng(5))
    path = write(fmt, tmp_path / "scan", phantom.scan, cartesian_readouts(kspace_os, phantom.scan), noise=noise_scan)
    out = tmp_path / "rec"
    assert main(["reconstruct", "--task", "mri", "--kspace", str(path), "--acceleration", "2", "--center-fraction",
                 "0.4", "--iterations", "3", "--no-progress", "--device", "cpu", "--out", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    s = m["task_settings"]
    assert "psnr" in m and m["psnr_measurement"] > 15 and s["acceleration_realised"] == 2.0
    assert s["noise_source"] == NOISE_SCAN and s["prewhitened"] is True
    assert np.isclose(s["noise_sigma"], 1 / (np.sqrt(2) * s["kspace_scale"]), rtol=1e-6)
    assert {"recon.png", "ground_truth.png", "measurement.png", "coil_combined_zero_filled.png",
            "noise_covariance.png", "noise_covariance.npy"} <= {f.name for f in out.iterdir()}
    saved = np.load(out / "noise_covariance.npy")
    assert saved.shape == (COILS, COILS) and np.linalg.norm(saved - PSI) < 0.1 * np.linalg.norm(PSI)


def test_given_maps_are_prewhitened_with_the_data_and_the_noise_level_is_on_the_problem(tmp_path, phantom):
    kspace_os, noise_scan = noisy_scan(phantom, np.random.default_rng(6))
    path = write_ismrmrd(tmp_path / "scan.h5", phantom.scan, cartesian_readouts(kspace_os, phantom.scan),
                         noise=noise_scan)
    np.save(tmp_path / "maps.npy", phantom.maps.astype(np.complex64))
    argv = ["reconstruct", "--task", "mri", "--kspace", str(path), "--slice", "0", "--maps",
            str(tmp_path / "maps.npy"), "--out", str(tmp_path / "unused")]
    problem = MRI.from_measurement(**options_from_argv(argv).task_options)
    whitening = read_measured_kspace(path, 0).whitening
    expected = np.einsum("ij,jhw->ihw", whitening, phantom.maps)
    expected /= np.sqrt((np.abs(expected) ** 2).sum(0))
    assert np.allclose(problem.physics.coil_maps[0].numpy(), expected, atol=1e-5)
    # the whitened maps describe the whitened data: S'^H F^H y_full is the phantom weighted by |L^{-1} S|, plus the
    # whitened noise, which the unit-norm maps carry into the image with unit variance per pixel
    image = problem.x_true[0, 0].numpy() + 1j * problem.x_true[0, 1].numpy()
    weight = np.sqrt((np.abs(np.einsum("ij,jhw->ihw", whitening, phantom.maps)) ** 2).sum(0))
    truth = (phantom.coil[0] * phantom.maps.conj()).sum(0)  # S^H S x = x: the birdcage maps have sum |S|^2 = 1
    error = image * problem.settings["kspace_scale"] - weight * truth
    assert abs(np.linalg.norm(error) / np.sqrt(H * W) - 1) < 0.15 and np.linalg.norm(weight * truth) > 250
    assert "prewhitened like the data" in problem.settings["maps"]
    assert problem.hints.noise_sigma == problem.settings["noise_sigma"] > 0
    plain = MRI.from_measurement(**options_from_argv([*argv, "--no-prewhiten"]).task_options)
    sigma = np.sqrt(np.real(np.trace(read_measured_kspace(path, 0).noise.covariance)) / COILS / 2)
    assert plain.settings["prewhitened"] is False
    assert np.isclose(plain.hints.noise_sigma, sigma / plain.settings["kspace_scale"], rtol=1e-6)


# ---- refused: one line, exit status 2, nothing written ------------------------------------------------------------
def _refused(capsys, path, tmp_path, phrase, *extra):
    out = tmp_path / "never"
    assert main(["reconstruct", "--task", "mri", "--kspace", str(path), *extra, "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("aseqdip: error:") and len(err.splitlines()) == 1 and phrase in err, err
    assert not out.exists()


def _missing_coil(readouts: list[Readout]) -> list[Readout]:
    broken = readouts[len(readouts) // 2]
    readouts[len(readouts) // 2] = broken._replace(data=broken.data[:3])
    return readouts


def _truncate(path):
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * 0.6)])
    return path


@pytest.mark.parametrize("fmt,defect,phrase", [
    ("ismrmrd", "3d", "3-D encoding"), ("twix-ve", "3d", "3-D encoding"), ("twix-vb", "partitions", "3-D encoding"),
    ("ismrmrd", "radial", "radial trajectory is not supported"), ("twix-ve", "radial", "radial trajectory"),
    ("ismrmrd", "coil", "missing coils"), ("twix-ve", "coil", "missing coils"), ("twix-vb", "coil", "missing coils"),
    ("ismrmrd", "truncated", "truncated"), ("twix-ve", "truncated", "truncated"), ("twix-vb", "truncated", "truncated"),
    # a readout header damaged into a line counter far beyond the encoding (issue 36: read as 26587 lines)
    ("twix-ve", "line-counter", "line counter is 26587"), ("twix-vb", "line-counter", "line counter is 26587"),
])
def test_files_the_readers_cannot_handle_are_refused_in_one_line(tmp_path, capsys, phantom, fmt, defect, phrase):
    scan = phantom.scan
    if defect == "3d":
        scan = scan._replace(partitions=4)
    elif defect == "radial":
        scan = scan._replace(trajectory="radial")
    readouts = cartesian_readouts(phantom.kspace_os, scan)
    if defect == "partitions":  # the header says 2-D, the counters say otherwise
        readouts = [r._replace(partition=r.line % 2) for r in readouts]
    if defect == "coil":
        readouts = _missing_coil(readouts)
    if defect == "line-counter":
        readouts[len(readouts) // 2] = readouts[len(readouts) // 2]._replace(line=26587)
    path = write(fmt, tmp_path / "bad", scan, readouts)
    if defect == "truncated":
        _truncate(path)
    _refused(capsys, path, tmp_path, phrase)


@pytest.mark.parametrize("fmt", ["twix-ve", "twix-vb", "ismrmrd"])
@pytest.mark.parametrize("seed", [0, 1])
def test_a_raw_file_with_garbage_written_mid_file_is_refused_in_one_line(tmp_path, capsys, phantom, fmt, seed):
    """4 KiB of random bytes in the middle (issue 36: a real gre.dat so damaged read as a 26587-line k-space)."""
    path = write(fmt, tmp_path / "damaged", phantom.scan, cartesian_readouts(phantom.kspace_os, phantom.scan))
    raw = bytearray(path.read_bytes())
    middle = len(raw) // 2
    raw[middle : middle + 4096] = np.random.default_rng(seed).bytes(4096)
    path.write_bytes(bytes(raw))
    out = tmp_path / "never"
    code = main(["reconstruct", "--task", "mri", "--kspace", str(path), "--iterations", "2", "--out", str(out),
                 "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert any(word in err for word in ("corrupt", "truncated", "could not read", "missing coils")), err
    assert not out.exists()


def test_unknown_content_and_slices_out_of_range_are_refused(tmp_path, capsys, phantom):
    junk = tmp_path / "scan.dat"
    junk.write_bytes(np.random.default_rng(0).bytes(4096))
    _refused(capsys, junk, tmp_path, "not an HDF5 file (fastMRI, ISMRMRD/MRD) nor a Siemens twix")
    path = write_twix_ve(tmp_path / "two.dat", phantom.scan, cartesian_readouts(phantom.kspace_os, phantom.scan))
    _refused(capsys, path, tmp_path, "--slice 2 is out of range", "--slice", "2")
    vb = write_twix_vb(tmp_path / "vb.dat", phantom.scan, cartesian_readouts(phantom.kspace_os, phantom.scan))
    _refused(capsys, vb, tmp_path, "out of range", "--slice", "-1")
