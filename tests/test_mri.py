"""Multi-coil MRI: operator, masks, ESPIRiT, fastMRI files, methods and bad input, on real MR slices."""

from __future__ import annotations

import json
import math

import deepinv as dinv
import h5py
import numpy as np
import pytest
import torch
from pydicom.data import get_testdata_file

from aseqdip.cli import main
from aseqdip.errors import UserInputError
from aseqdip.io.fastmri import read_fastmri_slice, write_fastmri
from aseqdip.io.images import resize
from aseqdip.methods import METHODS, ASeqDIP
from aseqdip.physics.consistency import data_consistent
from aseqdip.physics.defaults import first_estimate
from aseqdip.physics.mri import MagnitudeImage, birdcage_maps, center_crop, espirit_maps, magnitude, to_complex
from aseqdip.physics.mri_masks import auto_calibration_width, cartesian_mask, default_center_fraction
from aseqdip.tasks.mri import MRI, read_dicom_magnitude

MR_SMALL = get_testdata_file("MR_small.dcm")  # a real 64x64 MR slice shipped with pydicom


@pytest.fixture(scope="module")
def mr64() -> torch.Tensor:
    return read_dicom_magnitude(MR_SMALL)


@pytest.fixture(scope="module")
def problem4x(mr64):
    return MRI(acceleration=4, coils=8).simulate(mr64, seed=0)


# ---- operator and masks ------------------------------------------------------------------------
@pytest.mark.parametrize("shape,coils,sampling", [((64, 64), 15, "random"), ((48, 37), 4, "equispaced"),
                                                   ((33, 50), 1, "random")])
def test_multicoil_operator_is_adjoint_in_float64(shape, coils, sampling):
    h, w = shape
    mask = cartesian_mask(h, w, 4, sampling, generator=torch.Generator().manual_seed(1)).mask.double()
    maps = birdcage_maps(coils, h, w).to(torch.complex128)
    physics = dinv.physics.MultiCoilMRI(mask=mask, coil_maps=maps, img_size=shape)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 2, h, w, generator=g, dtype=torch.float64)
    y = torch.randn(1, 2, coils, h, w, generator=g, dtype=torch.float64)
    lhs, rhs = (physics.A(x) * y).sum(), (x * physics.A_adjoint(y)).sum()
    assert torch.isclose(lhs, rhs, rtol=1e-10), (lhs.item(), rhs.item())
    # the simulated maps are SENSE-normalised: fully sampled, A^H A is the identity
    full = dinv.physics.MultiCoilMRI(coil_maps=maps, img_size=shape)
    assert torch.allclose(full.A_adjoint(full.A(x)), x, atol=1e-10)


@pytest.mark.parametrize("sampling", ["random", "equispaced"])
@pytest.mark.parametrize("width,acceleration", [(64, 4), (127, 4), (368, 4), (368, 8), (320, 8), (100, 3.5)])
def test_masks_hit_their_acceleration_with_a_full_centre(width, acceleration, sampling):
    m = cartesian_mask(16, width, acceleration, sampling, generator=torch.Generator().manual_seed(3))
    assert torch.equal(m.mask, m.mask[:1].expand_as(m.mask)), "whole phase-encode columns"
    columns = m.mask[0]
    assert m.lines == int(columns.sum()) == math.floor(width / acceleration)
    assert abs(width / acceleration - m.lines) < 1  # exact to within one line
    assert m.center_lines == int(default_center_fraction(acceleration) * width)
    assert auto_calibration_width(columns) >= m.center_lines
    lo = width // 2 - m.center_lines // 2
    assert bool(columns[lo : lo + m.center_lines].all())


def test_masks_are_seeded_and_equispaced_lines_are_evenly_spread():
    def draw(seed: int, kind: str = "random"):
        return cartesian_mask(8, 256, 4, kind, generator=torch.Generator().manual_seed(seed))

    assert torch.equal(draw(5).mask, draw(5).mask)
    assert not torch.equal(draw(5).mask, draw(6).mask)
    m = draw(5, "equispaced")
    centre = slice(128 - m.center_lines // 2, 128 - m.center_lines // 2 + m.center_lines)
    outside = torch.ones(256, dtype=torch.bool)
    outside[centre] = False
    picked = torch.nonzero(m.mask[0][outside]).flatten()  # positions among the non-centre columns
    gaps = picked.diff()
    assert int(gaps.max() - gaps.min()) <= 1


def test_bad_mask_settings_are_refused():
    with pytest.raises(ValueError, match="greater than 1"):
        cartesian_mask(8, 64, 1.0)
    with pytest.raises(ValueError, match="no room"):
        cartesian_mask(8, 64, 8, center_fraction=0.5)


# ---- simulation, metrics, first estimate, data consistency ---------------------------------------
def test_simulated_problem_starts_from_the_zero_filled_image(problem4x, mr64):
    p = problem4x
    assert p.y.shape == (1, 2, 8, 64, 64) and p.x0.shape == (1, 2, 64, 64)
    assert torch.allclose(first_estimate(p.physics, p.y), p.physics.A_adjoint(p.y))
    assert torch.allclose(p.x0, p.physics.A_adjoint(p.y))
    assert torch.allclose(magnitude(p.x_true), mr64, atol=1e-6)  # the phase leaves the magnitude alone
    assert float(p.x_true[:, 1].abs().max()) > 0.1  # ... and the image really is complex
    assert p.settings["acceleration_realised"] == 4.0 and p.settings["coils"] == 8
    assert p.metrics(p.x_true)["psnr"] > 100
    assert 15 < p.metrics(p.x0)["psnr"] < 30


def test_metric_image_is_the_central_320_crop_normalised_by_the_reference_max():
    g = torch.Generator().manual_seed(0)
    ref = torch.randn(1, 2, 640, 368, generator=g) * 0.01
    ref[..., 320, 184] = 3.0  # peak inside the crop
    ref[..., 5, 5] = 10.0  # a brighter pixel outside it must not set the scale
    to_image = MagnitudeImage.of_reference(ref)
    img = to_image(ref)
    assert img.shape == (1, 1, 320, 320)
    assert math.isclose(float(img.max()), 1.0, rel_tol=1e-6)
    assert math.isclose(to_image.scale, 3.0 * math.sqrt(2), rel_tol=1e-6)
    assert center_crop(torch.zeros(1, 1, 64, 50)).shape[-2:] == (64, 50)  # smaller images are kept whole


def test_data_consistent_update_puts_back_the_measured_lines(problem4x):
    """DC(x) = S^H F^H [(1 - M) F S x + y]: coil k-space of x with its sampled lines replaced by y, coil-combined."""
    p = problem4x
    x = torch.randn(p.x0.shape, generator=torch.Generator().manual_seed(0))
    full = dinv.physics.MultiCoilMRI(coil_maps=p.physics.coil_maps, img_size=(64, 64))
    sampled = p.physics.mask[:, :, None].bool().expand_as(p.y)
    replaced = torch.where(sampled, p.y, full.A(x))
    assert torch.allclose(data_consistent(p.physics, x, p.y), full.A_adjoint(replaced), atol=1e-5)
    assert torch.allclose(data_consistent(p.physics, p.x_true, p.y), p.x_true, atol=1e-5)  # fixed point


def test_dc_update_is_refused_for_an_operator_without_a_projection(mr64):
    physics = dinv.physics.Denoising()
    with pytest.raises(UserInputError, match="not defined"):
        ASeqDIP(iterations=2, dc_update=True)(physics(mr64), physics)


def test_sigpy_sense_matches_deepinv_operator(problem4x):
    """The compressed-sensing solver must see the same A as the DIP methods (centred orthonormal FFT)."""
    import sigpy.mri as mr

    p = problem4x
    maps = p.physics.coil_maps[0].numpy()
    sense = mr.linop.Sense(maps, weights=p.physics.mask[0, 0].numpy())
    x = to_complex(p.x_true)[0].numpy()
    assert np.allclose(sense(x), to_complex(p.physics.A(p.x_true))[0].numpy(), atol=1e-5)


# ---- ESPIRiT ---------------------------------------------------------------------------------------
def test_espirit_recovers_simulated_coil_maps(mr64):
    """Maps from the 24x24 auto-calibration square of undersampled data match the simulated birdcage maps."""
    task = MRI(acceleration=2, coils=8, center_fraction=0.4)  # 25 centre lines hold the 24x24 square
    p = task.simulate(mr64, seed=0)
    assert auto_calibration_width(p.physics.mask[0, 0, 0]) >= 24
    est = espirit_maps(p.y, calib_width=24)[0]
    true = p.physics.coil_maps[0]
    inside = mr64[0, 0] > 0.25 * mr64.max()
    corr = [np.corrcoef(true[c].abs()[inside].numpy(), est[c].abs()[inside].numpy())[0, 1] for c in range(8)]
    assert min(corr) > 0.95, corr


# ---- methods on a real MR slice ------------------------------------------------------------------------
def test_aseqdip_beats_zero_filled_by_2db_at_4x(mr64):
    """The real slice at 32x32 with 4 coils keeps the budget small; hyper-parameters are the paper's."""
    p = MRI(acceleration=4, coils=4).simulate(resize(mr64, 32), seed=0)
    zero_filled = p.metrics(p.x0)["psnr"]
    x = ASeqDIP(iterations=160, precision="fp32")(p.y, p.physics)  # lr 1e-4, lambda 1, N 2; medium U-Net
    gained = p.metrics(x)["psnr"] - zero_filled
    assert gained >= 2.0, f"aSeqDIP gained {gained:.2f} dB over zero-filled ({zero_filled:.2f} dB)"


def test_compressed_sensing_beats_zero_filled(problem4x):
    p = problem4x
    r = METHODS["cs"](iterations=40).reconstruct(p.y, p.physics, monitor=p.psnr, track_every=20)
    assert p.metrics(r.image)["psnr"] > p.metrics(p.x0)["psnr"] + 2.0
    assert r.history["psnr_iteration"] == [20, 40]


# ---- fastMRI files ---------------------------------------------------------------------------------------
def fastmri_kspace(image: torch.Tensor, coils: int, slices: int = 3) -> np.ndarray:
    """Fully sampled multi-coil k-space (slices, coils, H, W) of a real image, slice s scaled by (s + 1)."""
    _, _, h, w = image.shape
    physics = dinv.physics.MultiCoilMRI(coil_maps=birdcage_maps(coils, h, w), img_size=(h, w))
    k = to_complex(physics.A(torch.cat([image, torch.zeros_like(image)], 1)))[0].numpy()
    return np.stack([k * (s + 1) for s in range(slices)]).astype(np.complex64)


def write_raw_fastmri(path, kspace: np.ndarray, rss: np.ndarray) -> None:
    """A file in fastMRI's multi-coil layout, written with h5py directly (independent of our writer)."""
    with h5py.File(path, "w") as hf:
        hf.create_dataset("kspace", data=kspace)
        hf.create_dataset("reconstruction_rss", data=rss)
        hf.create_dataset("ismrmrd_header", data=np.bytes_("<ismrmrdHeader/>"))
        hf.attrs.update({"acquisition": "CORPD_FBK", "max": float(rss.max()), "norm": float(np.linalg.norm(rss)),
                         "patient_id": "abc"})


def test_fastmri_reader_round_trips_the_layout(tmp_path, mr64):
    kspace = fastmri_kspace(mr64[..., :, :48], coils=5)  # odd coil count, non-square k-space
    rss = np.random.default_rng(0).random((3, 40, 40), dtype=np.float32)
    write_raw_fastmri(tmp_path / "file1000001.h5", kspace, rss)
    s = read_fastmri_slice(tmp_path / "file1000001.h5", 2)
    assert s.kspace.dtype == torch.complex64 and s.kspace.shape == (5, 64, 48)
    assert np.array_equal(s.kspace.numpy(), kspace[2]) and np.array_equal(s.rss.numpy(), rss[2])
    assert s.mask is None and s.n_slices == 3 and s.attrs["acquisition"] == "CORPD_FBK"
    assert read_fastmri_slice(tmp_path / "file1000001.h5").slice_index == 1  # middle by default
    mask = np.zeros(48, bool)
    mask[20:28] = True
    write_fastmri(tmp_path / "ours.h5", kspace, rss=rss, mask=mask)  # our writer, read back the same way
    t = read_fastmri_slice(tmp_path / "ours.h5", 0)
    assert np.array_equal(t.kspace.numpy(), kspace[0]) and np.array_equal(t.mask.numpy(), mask.astype(np.float32))


@pytest.fixture(scope="module")
def raw_file(tmp_path_factory, mr64):
    path = tmp_path_factory.mktemp("fastmri") / "file_brain.h5"
    kspace = fastmri_kspace(mr64, coils=4)
    write_raw_fastmri(path, kspace, np.abs(kspace).sum(1)[:, :32, :32])
    return path


def test_cli_reconstructs_a_fastmri_file_with_espirit_maps(tmp_path, raw_file):
    out = tmp_path / "rec"
    argv = ["reconstruct", "--task", "mri", "--kspace", str(raw_file), "--slice", "1", "--acceleration", "2",
            "--center-fraction", "0.2", "--iterations", "4", "--no-progress", "--device", "cpu", "--out", str(out)]
    assert main(argv) == 0
    m = json.loads((out / "metrics.json").read_text())
    s = m["task_settings"]
    assert s["slice"] == 1 and s["coils"] == 4 and s["acceleration_realised"] == 2.0 and "ESPIRiT" in s["maps"]
    assert m["measurement_is"] == "zero-filled" and m["psnr_measurement"] > 15
    assert np.load(out / "recon.npy").shape == (2, 64, 64)
    assert {"recon.png", "measurement.png", "ground_truth.png", "psnr_curve.png"} <= {f.name for f in out.iterdir()}


def test_cli_reconstructs_a_test_set_file_with_its_own_mask(tmp_path, mr64):
    """fastMRI test files hold undersampled k-space and a `mask`: use it, report no reference metrics."""
    maps = birdcage_maps(4, 64, 64)
    np.save(tmp_path / "maps.npy", maps.numpy())
    mask = np.zeros(64, bool)
    mask[::4] = True
    mask[28:36] = True
    kspace = fastmri_kspace(mr64, coils=4, slices=2) * mask
    write_fastmri(tmp_path / "test_file.h5", kspace, mask=mask)
    out = tmp_path / "rec"
    argv = ["reconstruct", "--task", "mri", "--kspace", str(tmp_path / "test_file.h5"), "--maps",
            str(tmp_path / "maps.npy"), "--iterations", "2", "--no-progress", "--device", "cpu", "--out", str(out)]
    assert main(argv) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert "psnr" not in m and m["task_settings"]["sampling"] == "from the file"
    assert m["task_settings"]["sampled_lines"] == int(mask.sum()) and m["task_settings"]["slice"] == 1


def test_cli_runs_simulated_mri_and_records_the_mask(tmp_path):
    out = tmp_path / "sim"
    argv = ["run", "--task", "mri", "--image", MR_SMALL, "--acceleration", "8", "--coils", "3", "--sampling",
            "equispaced", "--method", "cs", "--iterations", "5", "--no-progress", "--out", str(out)]
    assert main(argv) == 0
    m = json.loads((out / "metrics.json").read_text())
    s = m["task_settings"]
    assert m["method"] == "cs" and s["sampled_lines"] == 8 and s["acceleration_realised"] == 8.0
    assert s["center_fraction"] == 0.04 and s["sampling"] == "equispaced" and "simulated" in s["data"]


# ---- bad input: one line, exit status 2, nothing written ------------------------------------------------
def _refused(capsys, argv, tmp_path, phrase):
    out = tmp_path / "never"
    assert main([*argv, "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("aseqdip: error:") and len(err.splitlines()) == 1 and phrase in err, err
    assert not out.exists()


def test_not_hdf5_is_refused(tmp_path, capsys):
    bad = tmp_path / "scan.h5"
    bad.write_text("not an hdf5 file")
    _refused(capsys, ["reconstruct", "--task", "mri", "--kspace", str(bad)], tmp_path, "not an HDF5 file")


def test_hdf5_without_kspace_is_refused(tmp_path, capsys):
    with h5py.File(tmp_path / "x.h5", "w") as hf:
        hf.create_dataset("reconstruction_rss", data=np.zeros((2, 8, 8), np.float32))
    _refused(capsys, ["reconstruct", "--task", "mri", "--kspace", str(tmp_path / "x.h5")], tmp_path, "no 'kspace'")


def test_single_coil_kspace_is_refused(tmp_path, capsys):
    with h5py.File(tmp_path / "sc.h5", "w") as hf:
        hf.create_dataset("kspace", data=np.zeros((2, 16, 16), np.complex64))
    _refused(capsys, ["reconstruct", "--task", "mri", "--kspace", str(tmp_path / "sc.h5")], tmp_path,
             "expected multi-coil")


def test_slice_out_of_range_is_refused(tmp_path, capsys, raw_file):
    _refused(capsys, ["reconstruct", "--task", "mri", "--kspace", str(raw_file), "--slice", "3"], tmp_path,
             "out of range")


@pytest.mark.parametrize("command", ["run", "reconstruct"])
def test_acceleration_at_most_one_is_refused(tmp_path, capsys, raw_file, command):
    argv = (["run", "--task", "mri", "--image", MR_SMALL] if command == "run"
            else ["reconstruct", "--task", "mri", "--kspace", str(raw_file)])
    _refused(capsys, [*argv, "--acceleration", "1"], tmp_path, "--acceleration must be greater than 1")


def test_coil_maps_that_do_not_match_the_kspace_are_refused(tmp_path, capsys, raw_file):
    np.save(tmp_path / "maps.npy", np.ones((3, 64, 64), np.complex64))  # the file has 4 coils
    _refused(capsys, ["reconstruct", "--task", "mri", "--kspace", str(raw_file), "--maps", str(tmp_path / "maps.npy")],
             tmp_path, "do not match the k-space")
