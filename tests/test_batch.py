"""``aseqdip batch``: finding studies, nothing lost or done twice, Ray locally and on a 2-node cluster,
retries of killed workers with resume from the checkpoint, and failed studies recorded while others finish."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from aseqdip.batch import find_studies, run_batch
from aseqdip.cli import main, options_from_argv
from aseqdip.errors import UserInputError
from aseqdip.io import load_image, write_png
from aseqdip.io.fastmri import write_fastmri
from aseqdip.metrics import to_numpy_image

TINY = ["--iterations", "4", "--size", "16"]


def _images(folder: Path, names: tuple[str, ...], size: int = 16) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        write_png(folder / f"{name}.png", to_numpy_image(load_image(f"skimage:{name}", size=size)))
    return folder


def _rows(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "results.csv", newline="") as f:
        return {row["study"]: row for row in csv.DictReader(f)}


def _cli(*args: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "aseqdip.cli", *args], env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _parent(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2:].split()[1])  # the field after the state; comm may hold spaces


def _descendants_titled(ancestor: int, title: str) -> list[int]:
    """Processes named ``title`` under ``ancestor``: a test's own Ray workers, not those of a neighbour
    (pytest-xdist runs another test, maybe with its own Ray instance, beside this one)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if not entry.name.isdigit() or (entry / "cmdline").read_bytes().split(b"\0")[0].decode() != title:
                continue
            pid = int(entry.name)
            while pid > 1 and pid != ancestor:
                pid = _parent(pid)
            if pid == ancestor:
                found.append(int(entry.name))
        except OSError:
            continue
    return found


@pytest.fixture()
def threads_kept():
    """A serial batch runs its studies in this process with their own torch thread count: it must give the
    caller's back (a test process left at two threads ran the next model test half as fast on a busy machine)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)  # a serial study without --cpus-per-study takes every core: a leak shows here
    yield
    leaked = torch.get_num_threads()
    torch.set_num_threads(before)
    assert leaked == 1, f"the batch left this process at {leaked} torch threads"


# ---- finding studies ------------------------------------------------------------------------------------
def test_find_studies_expands_fastmri_slices_and_skips_other_files(tmp_path):
    src = _images(tmp_path / "in", ("camera",))
    _images(src / "patient", ("coffee",))
    (src / "notes.txt").write_text("not a study")
    (src / ".hidden.png").write_bytes(b"ignored")
    kspace = np.ones((3, 2, 8, 8), np.complex64)
    write_fastmri(src / "knee.h5", kspace)
    (src / "broken.h5").write_bytes(b"not hdf5")
    found = find_studies(str(src))
    assert [s.id for s in found.studies] == ["broken", "camera", "knee__slice000", "knee__slice001",
                                             "knee__slice002", "patient__coffee"]
    assert [s.slice_index for s in found.studies if s.id.startswith("knee")] == [0, 1, 2]
    assert found.studies[0].slice_index is None  # unreadable: kept as a study so that it fails with its error
    assert [p.name for p in found.skipped] == ["notes.txt"]
    assert [s.id for s in find_studies(str(src / "**" / "*.png")).studies] == ["camera", "patient__coffee"]
    with pytest.raises(UserInputError, match="matches no files"):
        find_studies(str(src / "patient" / "nothing*.dcm"))
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "readme.txt").write_text("no images here")
    with pytest.raises(UserInputError, match="no studies found"):
        find_studies(str(tmp_path / "docs"))


def test_bad_batch_options_fail_before_any_work(tmp_path, capsys):
    src = _images(tmp_path / "in", ("camera",))
    assert main(["batch", "--task", "denoise", "--input", str(src), "--out", str(tmp_path / "o"),
                 "--sigma", "-3", "--executor", "serial"]) == 2
    assert "sigma" in capsys.readouterr().err
    assert main(["batch", "--task", "denoise", "--input", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert main(["batch", "--task", "denoise", "--input", str(src), "--out", str(tmp_path / "o"),
                 "--no-such-option", "1"]) == 2
    assert main(["batch", "--task", "denoise", "--input", str(src), "--out", str(tmp_path / "o"),
                 "--image", str(src / "camera.png")]) == 2
    assert "set by the batch for each study" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_an_unreachable_cluster_is_one_clear_error(tmp_path, capsys, monkeypatch, ray):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    src = _images(tmp_path / "in", ("camera",))
    assert main(["batch", "--task", "denoise", "--input", str(src), "--out", str(tmp_path / "o"),
                 "--address", "auto", *TINY]) == 2
    assert "cannot reach a Ray cluster" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


# ---- nothing lost, nothing done twice ------------------------------------------------------------------
def test_failed_study_is_recorded_and_a_rerun_only_runs_what_is_missing(tmp_path, threads_kept):
    src = _images(tmp_path / "in", ("camera", "coffee"))
    (src / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "out"
    first = run_batch("denoise", str(src), out, TINY, read_options=options_from_argv, executor="serial", cpus_per_study=1,
                      progress=False)
    assert (first.done, first.failed) == (2, 1)
    rows = _rows(out)
    assert rows["broken"]["status"] == "failed" and "not a readable image" in rows["broken"]["error"]
    assert rows["broken"]["attempts"] == "1"  # a user error is not retried: it would fail the same way
    assert {rows[s]["status"] for s in ("camera", "coffee")} == {"done"}
    assert float(rows["camera"]["psnr_measurement"]) > 0 and rows["camera"]["iterations"] == "4"
    stamp = (out / "camera" / "metrics.json").stat().st_mtime_ns

    (src / "broken.png").unlink()
    _images(src, ("chelsea",))
    again = run_batch("denoise", str(src), out, TINY, read_options=options_from_argv, executor="serial", cpus_per_study=1,
                      progress=False)
    assert (again.studies, again.already_done, again.done, again.failed) == (3, 2, 1, 0)
    assert (out / "camera" / "metrics.json").stat().st_mtime_ns == stamp
    assert set(_rows(out)) == {"camera", "chelsea", "coffee"}


def test_batch_of_volumes_runs_each_volume_warm_started_and_records_the_bad_one(tmp_path, threads_kept):
    """--volumes: each volume (a 3-D .npy, a NIfTI) is one study run as `aseqdip volume`; a 2-D array fails
    alone with the reader's message; a rerun finds every volume done."""
    import nibabel as nib

    camera = to_numpy_image(load_image("skimage:camera", size=32))
    slices = np.stack([camera[k:k + 16, 8:24] for k in (4, 6, 8)]).astype(np.float32)  # 3 neighbouring crops
    src = tmp_path / "in"
    src.mkdir()
    np.save(src / "knee.npy", slices)
    nib.save(nib.Nifti1Image(np.ascontiguousarray(slices[::-1].transpose(2, 1, 0)), np.eye(4)), src / "head.nii.gz")
    np.save(src / "flat.npy", slices[0])
    (src / "notes.txt").write_text("not a volume")
    out = tmp_path / "out"
    options = ["--sigma", "25", "--iterations", "6"]
    first = run_batch("denoise", str(src), out, options, read_options=options_from_argv, executor="serial",
                      cpus_per_study=1, progress=False, volumes=True)
    assert (first.studies, first.done, first.failed, first.skipped_files) == (3, 2, 1, 1)
    rows = _rows(out)
    assert rows["flat"]["status"] == "failed" and "2-D" in rows["flat"]["error"]
    for name in ("knee", "head"):
        summary = json.loads((out / name / "volume.json").read_text())
        assert rows[name]["status"] == "done" and summary["input_slices"] == 3
        assert float(rows[name]["psnr"]) == pytest.approx(summary["mean_psnr"], abs=1e-3)  # the mean over slices
        assert int(rows[name]["iterations"]) == summary["total_steps"] > 6  # middle slice and warm neighbours
        assert np.load(out / name / "volume.npy").shape == (3, 16, 16)
    stamp = (out / "knee" / "volume.json").stat().st_mtime_ns
    again = run_batch("denoise", str(src), out, options, read_options=options_from_argv, executor="serial",
                      cpus_per_study=1, progress=False, volumes=True)
    assert (again.already_done, again.done) == (2, 0) and (out / "knee" / "volume.json").stat().st_mtime_ns == stamp


def test_a_rerun_into_out_must_be_the_same_job(tmp_path, threads_kept, capsys):
    src = _images(tmp_path / "in", ("camera",))
    out = tmp_path / "out"
    first = run_batch("denoise", str(src), out, TINY, read_options=options_from_argv, executor="serial", cpus_per_study=1,
                      progress=False)
    assert first.done == 1
    stamp = (out / "camera" / "metrics.json").stat().st_mtime_ns
    batch = ["batch", "--input", str(src), "--out", str(out), "--executor", "serial", "--no-progress"]
    for options, named in ((["--task", "denoise", "--iterations", "5", "--size", "16"], "--iterations"),
                           (["--task", "denoise", *TINY, "--seed", "1"], "--seed"),
                           (["--task", "inpaint", *TINY], "--task")):
        assert main([*batch, *options]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "was made by another job" in err and named in err, err
    _images(src, ("camera",), size=20)  # the same file name, other contents
    assert main([*batch, "--task", "denoise", *TINY]) == 2
    assert "the contents of --image differ" in capsys.readouterr().err
    assert (out / "camera" / "metrics.json").stat().st_mtime_ns == stamp  # the earlier results are kept as they were


def test_each_slice_of_a_fastmri_file_is_a_study(tmp_path, threads_kept):
    import deepinv as dinv
    import torch
    from pydicom.data import get_testdata_file

    from aseqdip.physics.mri import birdcage_maps, to_complex
    from aseqdip.tasks.mri import read_dicom_magnitude

    image = read_dicom_magnitude(get_testdata_file("MR_small.dcm"))  # a real 64x64 MR slice
    physics = dinv.physics.MultiCoilMRI(coil_maps=birdcage_maps(4, 64, 64), img_size=(64, 64))
    k = to_complex(physics.A(torch.cat([image, torch.zeros_like(image)], 1)))[0].numpy()
    (tmp_path / "in").mkdir()
    write_fastmri(tmp_path / "in" / "brain.h5", np.stack([k, 2 * k]).astype(np.complex64))
    options = ["--iterations", "3", "--acceleration", "4", "--center-fraction", "0.2"]
    summary = run_batch("mri", str(tmp_path / "in"), tmp_path / "out", options,
                        read_options=options_from_argv, executor="serial", cpus_per_study=1, progress=False)
    assert (summary.done, summary.failed) == (2, 0)
    rows = _rows(tmp_path / "out")
    assert list(rows) == ["brain__slice000", "brain__slice001"] and rows["brain__slice001"]["source"].endswith("slice 1")
    assert np.load(tmp_path / "out" / "brain__slice000" / "recon.npy").shape[-2:] == (64, 64)


# ---- Ray -----------------------------------------------------------------------------------------------
@pytest.fixture()
def ray():
    return pytest.importorskip("ray")


def test_batch_spreads_over_a_two_node_cluster(tmp_path, monkeypatch, ray):
    from ray.cluster_utils import Cluster

    monkeypatch.setenv("RAY_worker_niceness", "0")  # this cluster is the test's: its workers at the test's priority

    src = _images(tmp_path / "in", ("camera", "coffee"))  # two studies at once on two one-CPU nodes
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    try:
        cluster.wait_for_nodes()
        summary = run_batch("denoise", str(src), tmp_path / "out", [*TINY[:1], "40", *TINY[2:]],
                            read_options=options_from_argv, address=cluster.address, cpus_per_study=1, progress=False)
    finally:
        ray.shutdown()
        cluster.shutdown()
    assert (summary.done, summary.failed) == (2, 0)
    assert len({r["node"] for r in _rows(tmp_path / "out").values()}) == 2  # one CPU per node: both were used


def test_killed_driver_rerun_on_the_local_ray_default_finishes_only_the_missing_studies(tmp_path, capsys, monkeypatch,
                                                                                       ray):
    """A driver killed mid-batch loses nothing: the rerun (on the batch's default, a private local Ray instance)
    runs only the studies without results, and a broken file fails alone, recorded, while the others finish."""
    # Ray's own default joins the cluster named by RAY_ADDRESS or the last one started on this machine
    # (another test's, under pytest-xdist); the batch's default is a private instance all the same
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:9")
    studies = ("camera", "coffee", "chelsea", "astronaut", "rocket")
    src = _images(tmp_path / "in", studies)
    (src / "truncated.png").write_bytes((src / "camera.png").read_bytes()[:60])
    out = tmp_path / "out"
    # one CPU (one torch thread) per study: a study given two threads on a core another test keeps busy ran 40
    # steps at 16 px in 52 s here. Two studies at once on this machine: the kill lands when the first has its
    # results; Ray may start the next ones before it notices the driver is gone, so each study is long enough
    # (120 steps) that those are stopped before they finish.
    args = ["batch", "--task", "denoise", "--input", str(src), "--out", str(out), "--no-progress",
            "--iterations", "120", "--size", "16"]
    driver = _cli(*args)
    _wait_for(lambda: len(list(out.glob("*/metrics.json"))) >= 1 or driver.poll() is not None, 240, "a study")
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    # a worker of the killed driver may still write the study it was running (a second or two): the rerun
    # sees what is there once nothing changes any more, and the studies not started then are still missing
    finished: dict[str, int] = {}
    for _ in range(100):
        now = {p.parent.name: p.stat().st_mtime_ns for p in out.glob("*/metrics.json")}
        if now == finished:
            break
        finished = now
        time.sleep(3)
    assert 1 <= len(finished) < len(studies)
    capsys.readouterr()
    assert main(args) == 1, {study: row["error"] for study, row in _rows(out).items()}  # 1: a study failed
    left = len(studies) - len(finished)
    assert f"{len(finished)} already finished, {left} done now, 1 failed" in capsys.readouterr().out
    assert {p.parent.name: p.stat().st_mtime_ns for p in out.glob("*/metrics.json") if p.parent.name in finished} \
        == finished  # not run again
    rows = _rows(out)
    assert rows.pop("truncated")["status"] == "failed" and not (out / "truncated").exists()
    assert {r["status"] for r in rows.values()} == {"done"} and all(rows[s]["node"] for s in rows if s not in finished)
    assert all((out / name / "recon.npy").is_file() for name in rows)
    assert not ray.is_initialized()  # the local instance ends with the batch


def test_killed_worker_is_retried_and_resumes_to_the_uninterrupted_result(tmp_path, threads_kept, ray):
    src = _images(tmp_path / "in", ("camera",), size=24)
    options = ["--iterations", "80", "--seed", "3"]
    out = tmp_path / "out"
    driver = _cli("batch", "--task", "denoise", "--input", str(src), "--out", str(out), "--no-progress",
                  "--checkpoint-every", "10", *options)
    checkpoint = out / ".camera.checkpoint.pt"
    _wait_for(lambda: checkpoint.exists() or driver.poll() is not None, 240, "the first checkpoint")
    workers = _descendants_titled(driver.pid, "ray::run_study")  # Ray names a worker after its task
    assert workers, "no Ray worker running the study"
    # the private instance's workers run at this command's priority, not Ray's niceness 15 (see _worker_niceness)
    assert {os.getpriority(os.PRIO_PROCESS, pid) for pid in workers} == {os.getpriority(os.PRIO_PROCESS, 0)}
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    text, _ = driver.communicate(timeout=300)
    assert driver.returncode == 0, text
    row = _rows(out)["camera"]
    assert row["status"] == "done" and row["attempts"] == "2"
    assert not checkpoint.exists()  # removed once the results were written

    reference = run_batch("denoise", str(src), tmp_path / "ref", options, read_options=options_from_argv, executor="serial",
                          cpus_per_study=1, checkpoint_every=None, progress=False)
    assert reference.done == 1
    np.testing.assert_allclose(np.load(out / "camera" / "recon.npy"), np.load(tmp_path / "ref" / "camera" / "recon.npy"),
                               atol=1e-5)


def test_a_studys_failure_reads_in_the_commands_terms(tmp_path, capsys, threads_kept):
    """A rule the run's plan refuses fails each study in the worker; results.csv says it with the flag
    (--tau), as a single run would, not with the library's parameter name (OutputRule.tau)."""
    src = _images(tmp_path / "in", ("camera",))
    out = tmp_path / "out"
    assert main(["batch", "--task", "denoise", "--input", str(src), "--out", str(out), "--executor", "serial",
                 "--no-progress", *TINY, "--stop", "discrepancy", "--tau", "-1"]) == 1
    error = _rows(out)["camera"]["error"]
    assert "--tau must be positive" in error and "OutputRule" not in error
    capsys.readouterr()
