"""Issue 19: whole volumes in one command, each slice warm-started from its neighbour.

Reading (series order, multi-frame, NIfTI), writing (NIfTI affine, DICOM series read back with geometry and
HU), resuming a killed volume without redoing finished slices, refusing bad series in one line, and warm
start reaching a better slice than a cold one on the same small budget.
"""

from __future__ import annotations

import copy
import csv
import json
import random
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from aseqdip.cli import EXIT_INTERRUPTED, EXIT_USAGE, main
from aseqdip.io.volume_outputs import write_nifti
from aseqdip.io.volumes import read_volume, resampled_affine
from aseqdip.volume import run as volume_run
from aseqdip.volume import walk, work_folder

TINY = ["--size", "16", "--iterations", "4", "--no-progress", "--precision", "fp32"]
SLICE_MM = 2.5


def write_series(folder: Path, count: int = 4, *, shuffle: bool = True, positions: bool = True,
                 instance_numbers: bool = False, series_uid: str | None = None, prefix: str = "file") -> list[np.ndarray]:
    """``count`` CT slices from pydicom's CT_small.dcm, slice k brighter by 40 k HU, k * 2.5 mm along the normal.

    Files are named in a shuffled order; returns each slice's HU image in true order.
    """
    folder.mkdir(parents=True, exist_ok=True)
    template = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    series_uid = series_uid or generate_uid()
    base = template.pixel_array.astype(np.int16)
    names = list(range(count))
    if shuffle:
        random.Random(3).shuffle(names)
    origin = np.array([float(v) for v in template.ImagePositionPatient])
    hu = []
    for k in range(count):
        ds = copy.deepcopy(template)
        pixels = (base + 40 * k).astype(np.int16)
        ds.PixelData = pixels.tobytes()
        ds.SeriesInstanceUID, ds.SOPInstanceUID = series_uid, generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        if positions:
            ds.ImagePositionPatient = [f"{v:.4f}" for v in origin + np.array([0.0, 0.0, SLICE_MM * k])]
        else:
            del ds.ImagePositionPatient
        if instance_numbers:
            ds.InstanceNumber = k + 1
        else:
            del ds.InstanceNumber
        ds.save_as(folder / f"{prefix}_{names[k]:02d}.dcm")
        hu.append(pixels.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept))
    return hu


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err, err
    return err


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


# ---- reading ---------------------------------------------------------------------------------------
def test_series_ordered_by_position_without_instance_numbers(tmp_path):
    hu = write_series(tmp_path / "series", 5, shuffle=True, positions=True, instance_numbers=False)
    vol = read_volume(tmp_path / "series")
    assert vol.kind == "dicom series" and vol.modality == "CT" and vol.geometry_known
    assert vol.data.shape == (5, 128, 128)
    for k in range(5):
        np.testing.assert_allclose(vol.data[k], hu[k])
    # the affine places voxel (0, 0, k) at slice k's ImagePositionPatient (LPS -> RAS: x and y negated)
    template = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    origin = np.array([float(v) for v in template.ImagePositionPatient])
    for k in (0, 4):
        ras = vol.affine @ np.array([0.0, 0.0, k, 1.0])
        np.testing.assert_allclose(ras[:3], origin * np.array([-1, -1, 1]) + [0, 0, SLICE_MM * k], atol=1e-3)
    np.testing.assert_allclose(vol.spacing, (0.661468, 0.661468, SLICE_MM), atol=1e-5)


def test_series_falls_back_to_instance_number(tmp_path):
    hu = write_series(tmp_path / "series", 4, shuffle=True, positions=False, instance_numbers=True)
    vol = read_volume(tmp_path / "series")
    assert not vol.geometry_known
    for k in range(4):
        np.testing.assert_allclose(vol.data[k], hu[k])


def test_multiframe_emri_small_reads_ten_frames():
    vol = read_volume(get_testdata_file("emri_small.dcm"))
    assert vol.kind == "dicom multi-frame" and vol.modality == "MR"
    assert vol.data.shape == (10, 64, 64)
    assert vol.spacing[2] == pytest.approx(1.2)  # SpacingBetweenSlices: the frames carry no geometry
    raw = pydicom.dcmread(get_testdata_file("emri_small.dcm")).pixel_array
    np.testing.assert_allclose(vol.data, raw.astype(np.float32))


def test_multiframe_frames_placed_by_their_functional_groups(tmp_path):
    """An enhanced multi-frame file whose frames are stored top to bottom: read in position order, with the
    shared orientation and pixel spacing."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    ds = pydicom.dcmread(get_testdata_file("emri_small.dcm"))
    raw = ds.pixel_array.astype(np.float32)
    shared = Dataset()
    orientation, measures = Dataset(), Dataset()
    orientation.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    measures.PixelSpacing, measures.SliceThickness = [0.5, 0.75], 1.2
    shared.PlaneOrientationSequence, shared.PixelMeasuresSequence = Sequence([orientation]), Sequence([measures])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    frames = []
    for f in range(10):
        item, position = Dataset(), Dataset()
        position.ImagePositionPatient = [-10.0, 5.0, 1.2 * (9 - f)]  # frame 0 is the top slice
        item.PlanePositionSequence = Sequence([position])
        frames.append(item)
    ds.PerFrameFunctionalGroupsSequence = Sequence(frames)
    ds.save_as(tmp_path / "mf.dcm")
    vol = read_volume(tmp_path / "mf.dcm")
    assert vol.geometry_known
    np.testing.assert_array_equal(vol.data, raw[::-1])
    np.testing.assert_allclose(vol.spacing, (0.75, 0.5, 1.2))
    np.testing.assert_allclose(vol.affine[:3, 3], [10.0, -5.0, 0.0])  # LPS (-10, 5, 0) in RAS


def test_nifti_affine_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    theta = 0.3
    affine = np.array([[0.9 * np.cos(theta), -0.8 * np.sin(theta), 0.0, -40.5],
                       [0.9 * np.sin(theta), 0.8 * np.cos(theta), 0.0, 12.25],
                       [0.0, 0.0, 3.0, 7.0], [0.0, 0.0, 0.0, 1.0]])
    slices = rng.random((3, 20, 24)).astype(np.float32)
    write_nifti(tmp_path / "v.nii.gz", slices, affine)
    vol = read_volume(tmp_path / "v.nii.gz")
    np.testing.assert_allclose(vol.affine, affine, atol=1e-5)
    np.testing.assert_array_equal(vol.data, slices)


def test_resampled_affine_keeps_the_image_centre():
    affine = np.diag([0.5, 0.7, 2.0, 1.0])
    affine[:3, 3] = [10.0, -3.0, 1.0]
    # a 40 x 60 (rows x columns) slice cropped to its central 40 x 40 and resized to 16: same centre in mm
    new = resampled_affine(affine, top=0, left=10, factor=40 / 16)
    old_centre = affine @ np.array([(60 - 1) / 2, (40 - 1) / 2, 0.0, 1.0])
    new_centre = new @ np.array([(16 - 1) / 2, (16 - 1) / 2, 0.0, 1.0])
    np.testing.assert_allclose(new_centre, old_centre)
    np.testing.assert_allclose(np.linalg.norm(new[:3, 0]), 0.5 * 40 / 16)


def test_walk_goes_outwards_from_the_middle():
    assert walk(0, 5) == [(2, None), (3, 2), (1, 2), (4, 3), (0, 1)]
    assert walk(10, 14) == [(11, None), (12, 11), (10, 11), (13, 12)]
    assert all(n is None for _, n in walk(0, 5, cold=True))
    assert sorted(k for k, _ in walk(3, 9)) == list(range(3, 9))


# ---- outputs ---------------------------------------------------------------------------------------
def test_nifti_input_keeps_its_affine(tmp_path):
    rng = np.random.default_rng(1)
    affine = np.array([[0.0, 1.2, 0.0, -5.0], [-1.1, 0.0, 0.0, 8.0], [0.0, 0.0, 2.5, 30.0], [0, 0, 0, 1.0]])
    smooth = np.cumsum(np.cumsum(rng.random((3, 16, 16)), axis=1), axis=2).astype(np.float32)
    write_nifti(tmp_path / "in.nii.gz", smooth, affine)
    out = tmp_path / "out"
    rc = main(["volume", "--task", "denoise", "--input", str(tmp_path / "in.nii.gz"), "--out", str(out),
               "--iterations", "4", "--no-progress", "--precision", "fp32"])
    assert rc == 0
    vol = read_volume(out / "volume.nii.gz")
    np.testing.assert_allclose(vol.affine, affine, atol=1e-5)
    assert vol.data.shape == (3, 16, 16)
    np.testing.assert_allclose(vol.data, np.load(out / "volume.npy"), rtol=1e-6)
    assert not work_folder(out).exists()
    with open(out / "slices.csv", newline="") as f:  # auto's rule: the noise level each slice's rule used
        assert all(r["noise_source"] == "estimate" and float(r["noise_sigma"]) > 0 for r in csv.DictReader(f))
    # a slab: slices 1 and 2 only, its own middle cold, placed where they lie in the whole volume
    slab = tmp_path / "slab"
    assert main(["volume", "--task", "denoise", "--input", str(tmp_path / "in.nii.gz"), "--out", str(slab),
                 "--iterations", "4", "--no-progress", "--precision", "fp32", "--slab", "1:3"]) == 0
    part = read_volume(slab / "volume.nii.gz")
    np.testing.assert_allclose(part.affine[:, 3], affine @ np.array([0.0, 0.0, 1.0, 1.0]), atol=1e-5)
    np.testing.assert_allclose(part.data, vol.data[1:3], rtol=1e-6)  # the same problems as in the whole run
    with open(slab / "slices.csv", newline="") as f:
        assert [(r["index"], r["start"]) for r in csv.DictReader(f)] == [("1", "cold"), ("2", "warm")]


def test_slices_share_the_median_of_their_noise_estimates(tmp_path, capsys):
    """Under auto's discrepancy rule every slice uses one level, the median of the slices' own estimates."""
    rng = np.random.default_rng(2)
    smooth = np.cumsum(np.cumsum(rng.random((5, 16, 16)), axis=1), axis=2).astype(np.float32)
    np.save(tmp_path / "in.npy", smooth)

    def used(name: str, *extra: str, source: str = "estimate") -> list[float]:
        out = tmp_path / name
        assert main(["volume", "--task", "denoise", "--input", str(tmp_path / "in.npy"), "--out", str(out),
                     "--iterations", "4", "--no-progress", "--precision", "fp32", "--sigma", "40", *extra]) == 0
        with open(out / "slices.csv", newline="") as f:
            rows = sorted(csv.DictReader(f), key=lambda r: int(r["index"]))
        assert all(r["noise_source"] == source for r in rows)
        return [float(r["noise_sigma"]) for r in rows]

    own = used("own", "--no-shared-noise")
    capsys.readouterr()
    shared = used("shared")
    assert "for every slice (median of 5 slices' estimates)" in capsys.readouterr().out
    assert len(set(own)) == 5  # each slice's own noise, own estimate
    assert shared == [pytest.approx(float(np.median(own)), rel=1e-5)] * 5
    summary = json.loads((tmp_path / "shared" / "volume.json").read_text())
    assert sorted(summary["shared_noise"]["slices"].values()) == pytest.approx(sorted(own), rel=1e-5)
    assert "median over 5 slices" in summary["shared_noise"]["how"]
    given = used("given", "--sure-sigma", "40", source="given")  # a level the user gives is used as given, by every slice
    assert json.loads((tmp_path / "given" / "volume.json").read_text())["shared_noise"] is None
    assert given == [pytest.approx(40 / 255)] * 5


def test_dicom_series_output_read_back_with_geometry_and_hu(tmp_path):
    write_series(tmp_path / "series", 4)
    source = read_volume(tmp_path / "series")
    out = tmp_path / "out"
    rc = main(["volume", "--task", "ct", "--input", str(tmp_path / "series"), "--out", str(out), *TINY])
    assert rc == 0
    files = sorted((out / "dicom").glob("*.dcm"))
    assert len(files) == 4
    datasets = [pydicom.dcmread(f) for f in files]
    template = pydicom.dcmread(next((tmp_path / "series").iterdir()))
    assert {ds.SeriesInstanceUID for ds in datasets} != {template.SeriesInstanceUID}
    assert len({ds.SeriesInstanceUID for ds in datasets}) == 1
    assert len({ds.SOPInstanceUID for ds in datasets}) == 4
    for ds in datasets:
        assert ds.StudyInstanceUID == template.StudyInstanceUID and ds.PatientID == template.PatientID
        assert ds.Modality == "CT"
        np.testing.assert_allclose([float(v) for v in ds.ImageOrientationPatient],
                                   [float(v) for v in template.ImageOrientationPatient], atol=1e-6)
        np.testing.assert_allclose([float(v) for v in ds.PixelSpacing],
                                   [float(v) * 128 / 16 for v in template.PixelSpacing], rtol=1e-5)
    # read back as a volume: the same geometry as the input's after the resize, the same HU as volume.npy
    back = read_volume(out / "dicom")
    np.testing.assert_allclose(back.affine, resampled_affine(source.affine, 0, 0, 128 / 16), atol=1e-3)
    values = np.load(out / "volume.npy")
    slope = float(datasets[0].RescaleSlope)
    assert np.abs(back.data - values).max() <= slope / 2 + 1e-3
    assert values.min() >= -1000 - 1e-3 and values.max() <= 1000 + 1e-3  # HU from the CT window
    summary = json.loads((out / "volume.json").read_text())
    assert summary["dicom_series_uid"] == datasets[0].SeriesInstanceUID
    with open(out / "slices.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["index"]) for r in rows] == [0, 1, 2, 3]
    assert [r["start"] for r in rows].count("cold") == 1
    assert {r["steps"] for r in rows if r["start"] == "warm"} == {"4"}  # the middle slice's 4 steps, its ceiling
    # CT without a photon count: the cold middle slice is taken as noise-free (level 0, to its budget); warm
    # slices stop on the sinogram's MAD level (aseqdip.auto.NOISE_FREE_PHYSICS)
    assert {r["noise_source"] for r in rows if r["start"] == "cold"} == {"none"}
    assert {r["noise_source"] for r in rows if r["start"] == "warm"} == {"estimate"}
    assert all(float(r["psnr"]) > 0 for r in rows)


# ---- resume ----------------------------------------------------------------------------------------
def _counting(monkeypatch, fail_at: int | None = None) -> list[int]:
    """Count slice solves; raise KeyboardInterrupt (a kill) at solve number ``fail_at``."""
    calls: list[int] = []
    real = volume_run.solve_slice

    def solve(args, method, problem, warm):
        calls.append(1)
        if fail_at is not None and len(calls) == fail_at:
            raise KeyboardInterrupt("simulated kill")
        return real(args, method, problem, warm)

    monkeypatch.setattr(volume_run, "solve_slice", solve)
    return calls


def test_killed_volume_resumes_without_redoing_finished_slices(tmp_path, monkeypatch, capsys):
    write_series(tmp_path / "series", 5)
    argv = ["volume", "--task", "ct", "--input", str(tmp_path / "series"), *TINY, "--warm-iterations", "2"]
    whole = tmp_path / "whole"
    assert main([*argv, "--out", str(whole)]) == 0
    capsys.readouterr()

    out = tmp_path / "out"
    calls = _counting(monkeypatch, fail_at=3)
    assert main([*argv, "--out", str(out)]) == EXIT_INTERRUPTED
    assert "--resume" in _one_error_line(capsys)
    assert not out.exists()
    work = work_folder(out)
    finished = {int(json.loads(p.read_text())["index"]): json.loads(p.read_text()) for p in work.glob("slice_*.json")}
    assert sorted(finished) == [2, 3]  # the middle, then the first slice above it
    assert (work / "weights_0002.pt").exists()  # slice 1 still warm-starts from the middle

    assert main([*argv, "--out", str(out)]) == EXIT_USAGE  # no --resume: the finished slices are not thrown away
    assert "--resume" in _one_error_line(capsys)
    assert main([*argv, "--seed", "1", "--out", str(out), "--resume"]) == EXIT_USAGE  # another run's slices
    assert "--seed" in _one_error_line(capsys)

    calls = _counting(monkeypatch)
    assert main([*argv, "--out", str(out), "--resume"]) == 0
    assert len(calls) == 3  # slices 1, 4 and 0 only
    with open(out / "slices.csv", newline="") as f:
        rows = {int(r["index"]): r for r in csv.DictReader(f)}
    for k, record in finished.items():  # the finished slices' own records, not a recomputation
        assert float(rows[k]["seconds"]) == record["seconds"] and float(rows[k]["wall_seconds"]) == record["wall_seconds"]
    np.testing.assert_array_equal(np.load(out / "volume.npy"), np.load(whole / "volume.npy"))
    assert not work.exists()


# ---- refusals --------------------------------------------------------------------------------------
def _bad_inputs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    write_series(tmp_path / "mixed", 3)
    first = sorted((tmp_path / "mixed").iterdir())[0]
    ds = pydicom.dcmread(first)
    ds.PixelData = ds.pixel_array[:64, :64].copy().tobytes()
    ds.Rows, ds.Columns = 64, 64
    ds.save_as(first)
    write_series(tmp_path / "two", 2)
    write_series(tmp_path / "two", 2, series_uid=generate_uid(), prefix="other")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no DICOM here")
    np.save(tmp_path / "flat.npy", np.zeros((16, 16), np.float32))
    bad = np.ones((3, 16, 16), np.float32)
    bad[1, 2, 3] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    import nibabel as nib

    nib.save(nib.Nifti1Image(np.ones((16, 16, 3, 2), np.float32), np.eye(4)), tmp_path / "4d.nii.gz")
    return {"4-D NIfTI": (tmp_path / "4d.nii.gz", "4-D NIfTI of shape (16, 16, 3, 2) (2 volumes"),
            "mixed sizes": (tmp_path / "mixed", "different sizes"),
            "two series": (tmp_path / "two", "series"),
            "no DICOM": (tmp_path / "empty", "no DICOM"),
            "2-D array": (tmp_path / "flat.npy", "2-D"),
            "non-finite": (tmp_path / "nan.npy", "NaN")}


def test_bad_volumes_are_refused_in_one_line_with_nothing_written(tmp_path, capsys):
    cases = _bad_inputs(tmp_path)
    assert len(list((tmp_path / "two").glob("*.dcm"))) == 4
    for name, (path, words) in cases.items():
        before = _files(tmp_path)
        out = tmp_path / f"out-{name.replace(' ', '-')}"
        rc = main(["volume", "--task", "denoise", "--input", str(path), "--out", str(out), *TINY])
        assert rc == EXIT_USAGE, name
        err = _one_error_line(capsys)
        assert words in err, (name, err)
        assert _files(tmp_path) == before, name  # no output, no work folder, no staging folder


def test_volume_options_refused(tmp_path, capsys):
    emri = get_testdata_file("emri_small.dcm")
    for extra, words in ((["--task", "inpaint"], "volumes exist"), (["--task", "denoise", "--slab", "4:2"], "--slab"),
                         (["--task", "denoise", "--slab", "0:3", "--slices", "2"], "not both"),
                         (["--task", "denoise", "--method", "fbp"], "--cold"),
                         (["--task", "denoise", "--cold", "--warm-iterations", "3"], "--cold"),
                         (["--task", "denoise", "--cold", "--warm-ramp"], "--cold"),
                         (["--task", "denoise", "--cold", "--no-warm-input"], "--cold"),
                         (["--task", "denoise", "--warm-fraction", "1.5"], "--warm-fraction"),
                         (["--task", "denoise", "--warm-fraction", "0.3", "--warm-iterations", "3"], "not both"),
                         (["--task", "ct", "--shared-noise"], "differs from slice to slice")):
        before = _files(tmp_path)
        rc = main(["volume", "--input", emri, "--out", str(tmp_path / "o"), "--size", "16", "--no-progress", *extra])
        assert rc == EXIT_USAGE, extra
        assert words in _one_error_line(capsys), extra
        assert _files(tmp_path) == before


# ---- warm start helps --------------------------------------------------------------------------------
def test_warm_slice_beats_cold_slice_on_the_same_small_budget(tmp_path):
    """emri_small, denoising at 32 px: slice 5 warm-started from slice 4 (fitted for 100 steps) for 15 steps,
    against slice 5 cold for the same 15 steps (same measurement: the seed follows the slice index)."""
    emri = get_testdata_file("emri_small.dcm")
    common = ["volume", "--task", "denoise", "--input", emri, "--size", "32", "--sigma", "25", "--no-progress",
              "--precision", "fp32", "--stop", "none"]  # the same fixed budgets, not where a rule stops
    assert main([*common, "--slab", "4:6", "--iterations", "100", "--warm-iterations", "15",
                 "--out", str(tmp_path / "warm")]) == 0
    assert main([*common, "--slab", "5:6", "--iterations", "15", "--out", str(tmp_path / "cold")]) == 0

    def slice5(folder: str) -> dict[str, str]:
        with open(tmp_path / folder / "slices.csv", newline="") as f:
            return next(r for r in csv.DictReader(f) if r["index"] == "5")

    warm, cold = slice5("warm"), slice5("cold")
    assert warm["start"] == "warm" and cold["start"] == "cold"
    assert warm["steps"] == cold["steps"] == "15"
    assert warm["psnr_measurement"] == cold["psnr_measurement"]  # the same noisy slice
    assert float(warm["psnr"]) > float(cold["psnr"]) + 1.0


def test_every_slice_of_a_fastmri_file(tmp_path):
    """Measured k-space: each slice reconstructed as `reconstruct --kspace FILE --slice K` would, back in the
    file's scale (slice s of this file is slice 0 times s + 1, so its magnitudes are too)."""
    import deepinv as dinv
    import torch

    from aseqdip.io.fastmri import write_fastmri
    from aseqdip.physics.mri import birdcage_maps, to_complex
    from aseqdip.tasks.mri import read_dicom_magnitude

    image = read_dicom_magnitude(get_testdata_file("MR_small.dcm"))
    physics = dinv.physics.MultiCoilMRI(coil_maps=birdcage_maps(4, 64, 64), img_size=(64, 64))
    k = to_complex(physics.A(torch.cat([image, torch.zeros_like(image)], 1)))[0].numpy()
    write_fastmri(tmp_path / "knee.h5", np.stack([k * (s + 1) for s in range(3)]))
    out = tmp_path / "out"
    assert main(["volume", "--task", "mri", "--input", str(tmp_path / "knee.h5"), "--method", "cs", "--cold",
                 "--acceleration", "2", "--center-fraction", "0.2", "--no-progress", "--out", str(out)]) == 0
    values = np.load(out / "volume.npy")
    assert values.shape == (3, 64, 64)
    ratios = [float(values[s].sum() / values[0].sum()) for s in (1, 2)]
    np.testing.assert_allclose(ratios, [2.0, 3.0], rtol=0.02)
    with open(out / "slices.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["index"] for r in rows] == ["0", "1", "2"] and all(float(r["psnr"]) > 20 for r in rows)
    assert "dicom" not in {p.name for p in out.iterdir()}  # no DICOM input, no DICOM output


def test_warm_start_loads_or_mixes_the_neighbours_weights():
    """mix 1: the neighbour's weights; mix 0.5: half of them plus half of the run's own initialisation."""
    from types import SimpleNamespace

    import torch

    from aseqdip.engine.warm import WarmStart, Weights

    torch.manual_seed(0)
    neighbour = torch.nn.Linear(3, 2)
    for mix in (1.0, 0.5):
        own = torch.nn.Linear(3, 2)
        initial = {k: v.clone() for k, v in own.state_dict().items()}
        warm = WarmStart(Weights(network=neighbour.state_dict()), mix=mix)
        state = SimpleNamespace(net=own, optimizers=[], iteration=0)
        warm.on_start(state)
        for key, value in own.state_dict().items():
            expected = mix * neighbour.state_dict()[key] + (1 - mix) * initial[key]
            torch.testing.assert_close(value, expected)
        warm.on_end(state)
        torch.testing.assert_close(warm.final.network["weight"], own.weight.detach())


def test_warm_slices_go_without_auto_ramp_unless_asked():
    """--stop auto gives aSeqDIP a ramp (100 steps at 3 x lr); a warm slice's plan adds none (its network is
    fitted); --warm-ramp passes the cold slice's ramp as it ran."""
    import deepinv as dinv

    from aseqdip.methods.aseqdip import ASeqDIP
    from aseqdip.physics.hints import MeasurementHints
    from aseqdip.plan import make_plan
    from aseqdip.rules import OutputRule
    from aseqdip.volume import warm_method

    physics, y = dinv.physics.Denoising(), torch.rand(1, 1, 16, 16)
    middle = make_plan(ASeqDIP(iterations=400), OutputRule(stop="auto", sigma=0.1), physics, y).method
    assert middle.ramp == ASeqDIP.auto_settings["ramp"] > 0  # the cold middle slice has auto's ramp
    warm_hints = MeasurementHints(warm_slice=True)
    warm = make_plan(warm_method(middle, 40), OutputRule(stop="auto", sigma=0.1), physics, y, warm_hints).method
    assert (warm.ramp, warm.warmup, warm.iterations) == (0, 0, 40)
    ramped = warm_method(middle, 40, ramp=middle.ramp)
    assert make_plan(ramped, OutputRule(stop="auto", sigma=0.1), physics, y, warm_hints).method.ramp == middle.ramp


def test_warm_start_can_carry_the_input():
    """input=True: the run starts from the neighbour's final input (aSeqDIP's z_K) and keeps its own final one."""
    from types import SimpleNamespace

    import torch

    from aseqdip.engine.warm import WarmStart, Weights

    net = torch.nn.Linear(3, 2)
    theirs, own = torch.ones(1, 3), torch.zeros(1, 3)
    for carry, expected in ((False, own), (True, theirs)):
        state = SimpleNamespace(net=net, optimizers=[], iteration=0, z=own.clone())
        warm = WarmStart(Weights(network=net.state_dict(), input=theirs), input=carry)
        warm.on_start(state)
        torch.testing.assert_close(state.z, expected)
        warm.on_end(state)
        assert (warm.final.input is not None) == carry


def test_a_fixed_budget_gives_warm_slices_a_fifth_so_ten_slices_cost_under_three_cold_ones():
    from aseqdip.options import VolumeOptions
    from aseqdip.volume import warm_ceiling

    def ceiling(stop: str, warm_fraction: float | None = None) -> int:
        return warm_ceiling(VolumeOptions(input="v.nii", warm_fraction=warm_fraction), {"steps": 4000}, stop)

    assert ceiling("none") == 800 and 4000 + 9 * ceiling("none") < 3 * 4000
    assert ceiling("auto") == 4000  # under a rule, the cold middle slice's steps: a cap the rule mostly stops before
    assert ceiling("none", warm_fraction=0.5) == 2000


def test_warm_input_can_take_this_slices_own_measurements():
    """consistent=True: the neighbour's estimate becomes z_0 with this slice's sampled k-space put back, so
    z_0 agrees with this slice's y and keeps the neighbour's unsampled lines; an operator without a
    data-consistency step (denoising) keeps the neighbour's estimate as it is."""
    from types import SimpleNamespace

    import deepinv as dinv
    import torch

    from aseqdip.engine.warm import WarmStart, Weights

    g = torch.Generator().manual_seed(0)
    mask = (torch.rand(1, 1, 16, 16, generator=g) > 0.6).float()
    mri = dinv.physics.MRI(mask=mask, img_size=(1, 2, 16, 16))
    unsampled = dinv.physics.MRI(mask=1 - mask, img_size=(1, 2, 16, 16))
    truth, neighbour = torch.rand(1, 2, 16, 16, generator=g), torch.rand(1, 2, 16, 16, generator=g)
    net = torch.nn.Linear(3, 2)
    for physics, y in ((mri, mri.A(truth)), (dinv.physics.Denoising(), truth)):
        state = SimpleNamespace(net=net, optimizers=[], iteration=0, z=torch.zeros_like(truth), physics=physics, y=y)
        WarmStart(Weights(network=net.state_dict(), input=neighbour), input=True, consistent=True).on_start(state)
        if physics is mri:
            assert (mri.A(neighbour) - y).abs().max() > 0.1  # the neighbour's estimate disagrees with this y
            torch.testing.assert_close(mri.A(state.z), y, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(unsampled.A(state.z), unsampled.A(neighbour), atol=1e-5, rtol=1e-5)
        else:
            torch.testing.assert_close(state.z, neighbour)
