"""Issue 20: nothing lost, nothing silently wrong.

1. outputs never destroy or mix files (existing --out, --overwrite as a whole, inputs, stale staging, kill during save);
2. a resumed or rerun job is the same job (fingerprints in checkpoints and metrics.json);
3. bad input is refused before computing: one line, exit 2, nothing computed, nothing written;
4. no meaningless result with exit 0 (non-finite runs stop; each dtype has a documented rule);
5. messages tell the truth (what an interruption kept; no library warnings on the terminal).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from aseqdip.cli import EXIT_INTERRUPTED, EXIT_NON_FINITE, EXIT_USAGE, main

TINY = ["--size", "16", "--iterations", "2", "--no-progress", "--precision", "fp32"]


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` (hidden ones too) with its size and modification time."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in root.rglob("*") if p.is_file()}


def _one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err and "Warning" not in err, err
    return err


@pytest.fixture()
def inputs(tmp_path: Path) -> Path:
    """Small input files of every kind the table needs, in tmp_path/in."""
    from PIL import Image
    from pydicom.data import get_testdata_file

    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((32, 32, 3)) * 255).astype(np.uint8)).save(folder / "photo.png")
    Image.fromarray(np.zeros((1, 1), np.uint8)).save(folder / "one.png")
    frames = [Image.fromarray((rng.random((32, 32)) * 255).astype(np.uint8)) for _ in range(3)]
    frames[0].save(folder / "stack.tif", save_all=True, append_images=frames[1:])
    np.save(folder / "stack.npy", rng.random((5, 32, 32)).astype(np.float32))
    np.save(folder / "batch4d.npy", rng.random((2, 32, 32, 3)).astype(np.float32))
    np.save(folder / "empty.npy", np.zeros((0,), np.float32))
    np.save(folder / "complex.npy", (rng.random((32, 32)) + 1j * rng.random((32, 32))).astype(np.complex64))
    np.save(folder / "sino.npy", rng.random((46, 18)).astype(np.float32))
    (folder / "angles.txt").write_text(" ".join(str(a) for a in np.arange(18) * 10.0))
    shutil.copy(get_testdata_file("CT_small.dcm"), folder / "slice.dcm")
    (tmp_path / "linked").mkdir()  # a folder and a symbolic link to it, as --out
    (tmp_path / "link").symlink_to(tmp_path / "linked")
    earlier = tmp_path / "earlier"  # an earlier folder of the user's: not a run's results
    earlier.mkdir()
    shutil.copy(folder / "photo.png", earlier / "recon.png")
    (tmp_path / "a_file.txt").write_text("not a folder")
    return folder


def _cases() -> list[tuple[str, list[str], str]]:
    """(id, argv with IN/OUT/TMP placeholders, text the one-line error must contain)."""
    photo = ["run", "--task", "denoise", "--image", "IN/photo.png", *TINY]
    camera = ["run", "--task", "denoise", "--image", "skimage:camera", *TINY]
    sino = ["reconstruct", "--task", "ct", "--sinogram", "IN/sino.npy", "--angles-file", "IN/angles.txt",
            "--iterations", "2", "--no-progress"]
    return [
        # 1. outputs
        ("out-exists-not-empty", [*photo, "--out", "TMP/earlier"], "already holds files"),
        ("out-exists-reconstruct", [*sino, "--out", "TMP/earlier"], "already holds files"),
        ("out-holds-the-input", ["run", "--task", "denoise", "--image", "TMP/earlier/recon.png", *TINY,
                                 "--out", "TMP/earlier"], "holds the input"),
        ("overwrite-out-holding-the-input", ["run", "--task", "denoise", "--image", "TMP/earlier/recon.png", *TINY,
                                             "--out", "TMP/earlier", "--overwrite"], "holds the input"),
        ("overwrite-a-folder-that-is-no-run", [*camera, "--out", "TMP/earlier", "--overwrite"], "not an aseqdip run"),
        ("out-is-a-file", [*camera, "--out", "TMP/a_file.txt"], "not a folder"),
        ("out-under-a-file", [*camera, "--out", "TMP/a_file.txt/run"], "is a file, not a folder"),
        ("out-is-the-current-folder", [*camera, "--out", ".", "--overwrite"], "current folder"),
        ("out-is-empty", [*camera, "--out", ""], "--out is empty"),
        ("out-is-a-symlink", [*camera, "--out", "TMP/link"], "symbolic link"),
        ("out-name-250-bytes", [*camera, "--out", "TMP/" + "b" * 250], "folder name is 250 bytes"),
        ("out-name-300-bytes", [*camera, "--out", "TMP/" + "a" * 300], "folder name is 300 bytes"),
        ("batch-overwrite", ["batch", "--task", "denoise", "--input", "IN", "--out", "OUT", "--executor", "serial",
                             "--overwrite"], "does not apply to a batch"),
        ("batch-into-a-foreign-folder", ["batch", "--task", "denoise", "--input", "IN", "--out", "TMP/earlier",
                                         "--executor", "serial"], "not an aseqdip batch"),
        # 3. sizes, layouts, numbers, devices
        ("image-1x1", ["run", "--task", "denoise", "--image", "IN/one.png", "--iterations", "2", "--out", "OUT"],
         "11x11"),
        ("ct-size-2", ["run", "--task", "ct", "--image", "skimage:camera", "--size", "2", "--out", "OUT"], "--size 2"),
        ("mri-size-4", ["run", "--task", "mri", "--image", "skimage:camera", "--size", "4", "--out", "OUT"],
         "--size 4"),
        ("size-beyond-memory", ["run", "--task", "denoise", "--image", "skimage:camera", "--size", "10000000",
                                "--out", "OUT"], "memory"),
        ("npy-stack", ["run", "--task", "denoise", "--image", "IN/stack.npy", *TINY, "--out", "OUT"],
         "several images"),
        ("npy-4d-batch", ["run", "--task", "denoise", "--image", "IN/batch4d.npy", *TINY, "--out", "OUT"],
         "several images"),
        ("npy-empty", ["run", "--task", "denoise", "--image", "IN/empty.npy", *TINY, "--out", "OUT"], "empty"),
        ("tiff-frames", ["run", "--task", "denoise", "--image", "IN/stack.tif", *TINY, "--out", "OUT"], "3 images"),
        ("complex-for-a-real-task", ["run", "--task", "denoise", "--image", "IN/complex.npy", *TINY, "--out", "OUT"],
         "only the mri task"),
        ("dicom-for-a-photo-task", ["run", "--task", "denoise", "--image", "IN/slice.dcm", *TINY, "--out", "OUT"],
         "a DICOM file; only the ct and mri tasks"),
        ("lr-nan", [*camera, "--lr", "nan", "--out", "OUT"], "--lr must be a finite number"),
        ("iterations-beyond-a-year", [*camera, "--iterations", "99999999999999999999", "--out", "OUT"],
         "more than a year of steps"),
        ("lam-inf", [*camera, "--lam", "inf", "--out", "OUT"], "--lam must be a finite number"),
        ("hu-window-nan", ["run", "--task", "ct", "--image", "skimage:camera", *TINY, "--hu-window", "nan", "1",
                           "--out", "OUT"], "--hu-window must be a finite number"),
        ("sigma-inf-in-a-batch", ["batch", "--task", "denoise", "--input", "IN/photo.png", "--out", "OUT",
                                  "--executor", "serial", "--sigma", "inf"], "--sigma must be a finite number"),
        ("batch-gpus-nan", ["batch", "--task", "denoise", "--input", "IN/photo.png", "--out", "OUT",
                            "--gpus-per-study", "nan"], "--gpus-per-study must be a finite number"),
        ("device-not-there", [*camera, "--device", "cuda:7", "--out", "OUT"], "--device cuda:7"),
        ("device-not-a-device", [*camera, "--device", "banana", "--out", "OUT"], "not a device"),
    ]


@pytest.mark.parametrize(("argv", "expected"), [case[1:] for case in _cases()], ids=[case[0] for case in _cases()])
def test_bad_input_is_refused_in_one_line_before_computing(tmp_path, inputs, capsys, monkeypatch, argv, expected):
    import aseqdip.rules
    from aseqdip.tasks import TASKS

    def computed(*args, **kwargs):
        raise AssertionError("a refused run computed something")

    monkeypatch.setattr(aseqdip.rules, "reconstruct", computed)
    for task in TASKS.values():
        monkeypatch.setattr(task, "simulate", computed)
    monkeypatch.chdir(tmp_path)
    argv = [a.replace("IN", str(inputs)).replace("OUT", str(tmp_path / "out")).replace("TMP", str(tmp_path))
            for a in argv]
    before = _snapshot(tmp_path)
    assert main(argv) == EXIT_USAGE
    err = _one_error_line(capsys)
    assert err.startswith("aseqdip: error:") and expected in err, err
    assert not (tmp_path / "out").exists()
    assert _snapshot(tmp_path) == before, "a refused run touched files"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "staging or checkpoint left behind"


# ---- 1. outputs ------------------------------------------------------------------------------------------
def test_overwrite_replaces_an_earlier_run_as_a_whole(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", "--task", "denoise", "--image", "skimage:camera", *TINY, "--out", str(out)]) == 0
    (out / "notes.txt").write_text("left by the earlier run")
    (tmp_path / "neighbour.txt").write_text("outside --out")
    outside = {k: v for k, v in _snapshot(tmp_path).items() if not k.startswith("out/")}
    assert main(["run", "--task", "denoise", "--image", "skimage:camera", *TINY, "--seed", "3", "--out", str(out)]) \
        == EXIT_USAGE
    assert "--overwrite" in capsys.readouterr().err
    assert main(["run", "--task", "denoise", "--image", "skimage:camera", *TINY, "--seed", "3", "--out", str(out),
                 "--overwrite"]) == 0
    assert not (out / "notes.txt").exists(), "the earlier folder was mixed with the new one, not replaced"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["seed"] == 3 and metrics["fingerprint"]["--seed"] == 3
    assert {k: v for k, v in _snapshot(tmp_path).items() if not k.startswith("out/")} == outside
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_an_empty_out_folder_is_used(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    assert main(["run", "--task", "denoise", "--image", "skimage:camera", *TINY, "--out", str(out)]) == 0
    assert (out / "metrics.json").is_file()


def test_staging_folders_of_killed_runs_are_removed_by_the_next_run(tmp_path):
    from aseqdip.io.outputs import remove_stale_staging

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = int(gone.stdout)  # a process that has ended
    stale = tmp_path / f".out.partial-{dead}-abc123"
    stale.mkdir()
    (stale / "recon.npy").write_bytes(b"half")
    live = tmp_path / f".out.partial-{os.getpid()}-def456"  # another run of this process, still writing
    live.mkdir()
    assert remove_stale_staging(tmp_path / "out") == [stale]
    assert not stale.exists() and live.exists()
    swapped = tmp_path / f".out.old-{dead}-abc123"  # killed between the two renames of --overwrite
    swapped.mkdir()
    (swapped / "metrics.json").write_text("{}")
    assert remove_stale_staging(tmp_path / "out") == []
    assert (tmp_path / "out" / "metrics.json").is_file() and not swapped.exists()  # put back, not lost


def test_a_run_killed_while_saving_loses_nothing_and_the_next_run_cleans_up(tmp_path):
    out = tmp_path / "out"
    assert main(["run", "--task", "denoise", "--image", "skimage:camera", *TINY, "--out", str(out)]) == 0
    earlier = _snapshot(out)
    marker = tmp_path / "staged"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ASEQDIP_TEST_PAUSE_BEFORE_COMMIT": str(marker),
           "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-m", "aseqdip.cli", "run", "--task", "denoise", "--image",
                             "skimage:camera", *TINY, "--seed", "5", "--out", str(out), "--overwrite"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "the run never reached the save"
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert _snapshot(out) == earlier, "a kill during the save changed the earlier results"
    staged = list(tmp_path.glob(".out.partial-*"))
    assert len(staged) == 1 and (staged[0] / "metrics.json").is_file()  # complete, but never put in place
    assert main(["run", "--task", "denoise", "--image", "skimage:camera", *TINY, "--seed", "5", "--out", str(out),
                 "--overwrite"]) == 0
    assert json.loads((out / "metrics.json").read_text())["seed"] == 5
    assert not list(tmp_path.glob(".out.*")), "the killed run's staging folder was left behind"


def test_special_files_are_refused_without_waiting_on_them(tmp_path, capsys):
    """A FIFO as an image, as a volume, or inside a batch's input folder: one line, exit 2, no hang."""
    special = tmp_path / "special"
    special.mkdir()
    fifos = [special / "pipe.png", tmp_path / "pipe.nii.gz"]
    for fifo in fifos:
        os.mkfifo(fifo)
    blocked, finished = threading.Event(), threading.Event()

    def unblock() -> None:
        """Opening a FIFO to read waits for a writer: after a minute, be that writer again and again, so that a
        hang fails the test instead of stalling the suite."""
        if finished.wait(60):
            return
        blocked.set()
        while not finished.wait(0.1):
            for fifo in fifos:
                os.close(os.open(fifo, os.O_RDWR | os.O_NONBLOCK))

    watchdog = threading.Thread(target=unblock, daemon=True)
    watchdog.start()
    try:
        for argv in (["run", "--task", "denoise", "--image", str(special / "pipe.png"), *TINY, "--out", str(tmp_path / "o1")],
                     ["volume", "--task", "denoise", "--input", str(tmp_path / "pipe.nii.gz"), "--iterations", "2",
                      "--out", str(tmp_path / "o2")],
                     ["batch", "--task", "denoise", "--input", str(special), "--executor", "serial", *TINY,
                      "--out", str(tmp_path / "o3")]):
            code = main(argv)
            assert not blocked.is_set(), f"aseqdip {argv[0]} waited on a FIFO"
            assert code == EXIT_USAGE and "FIFO" in _one_error_line(capsys)
    finally:
        finished.set()
        watchdog.join()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe.nii.gz", "special"]  # nothing written


def test_a_checkpoint_is_not_thrown_away_by_a_rerun_without_resume(tmp_path, capsys):
    checkpoint = tmp_path / ".out.checkpoint.pt"
    checkpoint.write_bytes(b"an earlier run's checkpoint")
    assert main(["run", "--task", "denoise", "--image", "skimage:camera", *TINY, "--out", str(tmp_path / "out")]) \
        == EXIT_USAGE
    err = _one_error_line(capsys)
    assert "--resume" in err and "delete" in err and str(checkpoint) in err
    assert checkpoint.read_bytes() == b"an earlier run's checkpoint" and not (tmp_path / "out").exists()


def test_a_second_run_for_the_same_out_is_refused_before_it_computes(tmp_path, capsys, monkeypatch):
    import aseqdip.rules

    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        (tmp_path / ".out.lock").write_text(str(holder.pid))  # a live run computing into --out
        monkeypatch.setattr(aseqdip.rules, "reconstruct", lambda *a, **k: pytest.fail("the second run computed"))
        assert main(["run", "--task", "denoise", "--image", "skimage:camera", *TINY, "--out", str(tmp_path / "out")]) \
            == EXIT_USAGE
        assert f"process {holder.pid}" in _one_error_line(capsys)
    finally:
        holder.kill()
        holder.wait()
    monkeypatch.undo()
    # the holder is gone: its lock is taken over, and the run's own lock is gone when it ends
    assert main(["run", "--task", "denoise", "--image", "skimage:camera", *TINY, "--out", str(tmp_path / "out")]) == 0
    assert not (tmp_path / ".out.lock").exists()


def test_two_concurrent_runs_for_one_out_the_second_is_refused_while_the_first_computes(tmp_path):
    out = tmp_path / "out"
    marker = tmp_path / "staged"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    argv = [sys.executable, "-m", "aseqdip.cli", "run", "--task", "denoise", "--image", "skimage:camera", *TINY,
            "--out", str(out)]
    first = subprocess.Popen(argv, env={**env, "ASEQDIP_TEST_PAUSE_BEFORE_COMMIT": str(marker)},
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():  # the first run has computed and holds --out
            assert first.poll() is None, first.stderr.read()
            assert time.monotonic() < deadline, "the first run never reached the save"
            time.sleep(0.1)
        second = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
        assert second.returncode == EXIT_USAGE, second.stderr
        err = second.stderr.strip()
        assert len(err.splitlines()) == 1 and f"process {first.pid}" in err and "Traceback" not in err, err
    finally:
        first.kill()
        first.wait()


def test_a_run_that_lost_the_race_for_its_out_keeps_its_results_and_says_where(tmp_path):
    from aseqdip.errors import UserInputError
    from aseqdip.io import StagedOutput

    dest = tmp_path / "out"
    with pytest.raises(UserInputError, match="another run wrote that folder") as refused:
        with StagedOutput(dest) as out:
            out.path("recon.npy").write_bytes(b"ours")
            dest.mkdir()  # the other run put its folder in place meanwhile
            (dest / "metrics.json").write_text("{}")
    kept = tmp_path / f"out.conflict-{os.getpid()}"
    assert str(kept) in str(refused.value) and (kept / "recon.npy").read_bytes() == b"ours"
    assert (dest / "metrics.json").read_text() == "{}"


@pytest.mark.parametrize("checkpoints", [False, True])
def test_a_full_disk_is_one_line_naming_the_file_and_leaves_nothing_partial(tmp_path, checkpoints):
    import resource

    from aseqdip.cli import EXIT_STORAGE

    def small_files() -> None:  # files over 8 KiB cannot be written (as on a full disk)
        resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))

    out = tmp_path / "out"
    argv = [sys.executable, "-m", "aseqdip.cli", "run", "--task", "denoise", "--image", "skimage:astronaut",
            "--size", "64", "--iterations", "4", "--no-progress", "--out", str(out),
            *(["--checkpoint-every", "2"] if checkpoints else [])]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, preexec_fn=small_files)
    assert done.returncode == EXIT_STORAGE, done.stderr
    err = done.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert "could not write" in err and "errno 27" in err, err
    assert ("checkpoint" in err) == checkpoints
    assert list(tmp_path.iterdir()) == [], "a partial file or folder was left"


def test_a_batch_does_not_take_an_earlier_runs_outputs_for_studies(tmp_path):
    from PIL import Image

    from aseqdip.batch.studies import find_studies

    data = tmp_path / "data"
    data.mkdir()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(data / "photo.png")
    assert main(["batch", "--task", "denoise", "--input", str(data), "--out", str(data / "out2"),
                 "--executor", "serial", *TINY]) == 0
    assert (data / "out2" / "photo" / "recon.png").is_file()
    single = data / "single"  # and a single run's folder written there by hand
    assert main(["run", "--task", "denoise", "--image", str(data / "photo.png"), *TINY, "--out", str(single)]) == 0
    assert [s.id for s in find_studies(str(data)).studies] == ["photo"]


# ---- 2. the same job -------------------------------------------------------------------------------------
def test_resume_accepts_only_the_same_job_and_refuses_damaged_checkpoints(tmp_path, capsys, monkeypatch):
    import aseqdip.report

    out = tmp_path / "out"

    def command(image: str = "skimage:camera", *extra: str) -> list[str]:
        return ["run", "--task", "denoise", "--image", image, "--size", "16", "--iterations", "6", "--no-progress",
                "--precision", "fp32", "--checkpoint-every", "2", "--out", str(out), *extra]

    real_save = aseqdip.report.save_run

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(aseqdip.report, "save_run", interrupted)  # Ctrl-C after the last checkpoint (step 4)
    assert main(command()) == EXIT_INTERRUPTED
    checkpoint = tmp_path / ".out.checkpoint.pt"
    err = capsys.readouterr().err
    assert str(checkpoint) in err and "--resume" in err and "nothing was written" not in err
    assert checkpoint.is_file() and not out.exists()
    monkeypatch.setattr(aseqdip.report, "save_run", real_save)

    saved = checkpoint.read_bytes()
    for argv, named in ((command("skimage:camera", "--resume", "--seed", "7"), "--seed"),
                        (command("skimage:camera", "--resume", "--method", "dip"), "--method"),
                        (command("skimage:camera", "--resume", "--lam", "2"), "--lam"),
                        (command("skimage:coffee", "--resume"), "--image")):
        assert main(argv) == EXIT_USAGE
        err = _one_error_line(capsys)
        assert "another run's checkpoint" in err and named in err, err
    assert checkpoint.read_bytes() == saved and not out.exists()

    checkpoint.write_bytes(saved[: len(saved) // 2])
    assert main(command("skimage:camera", "--resume")) == EXIT_USAGE
    assert "truncated or corrupted" in _one_error_line(capsys)
    checkpoint.write_bytes(saved)
    assert main(command("skimage:camera", "--resume")) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["resumed_from_iteration"] == 4 and metrics["seed"] == 0
    assert not checkpoint.exists()


def test_fingerprint_names_options_and_covers_the_input_contents(tmp_path):
    from aseqdip.cli import options_from_argv
    from aseqdip.fingerprint import first_difference, run_fingerprint
    from aseqdip.pipeline import record

    def fingerprint(argv):
        return run_fingerprint(record(options_from_argv(argv)))

    image = tmp_path / "x.npy"
    np.save(image, np.zeros((16, 16), np.float32))
    argv = ["run", "--task", "denoise", "--image", str(image), "--out", str(tmp_path / "o")]
    fp = fingerprint(argv)
    assert fp["--image"].startswith("sha256:") and "--out" not in fp and "--device" not in fp
    assert fp["aseqdip version"] and fp["--task"] == "denoise" and fp["--seed"] == 0
    moved = fingerprint([*argv[:-1], str(tmp_path / "elsewhere"), "--device", "cpu"])
    assert first_difference(fp, moved) is None  # where it writes and on what device do not change the result
    np.save(image, np.ones((16, 16), np.float32))
    changed = fingerprint(argv)
    assert first_difference(fp, changed) == "--image"
    assert first_difference(changed, fingerprint([*argv, "--lr", "0.1"])) == "--lr"


# ---- 4. nothing meaningless with exit 0 ------------------------------------------------------------------
def test_a_diverging_run_stops_with_one_line_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["run", "--task", "denoise", "--image", "skimage:camera", *TINY, "--method", "dip", "--lr", "1e30",
                 "--out", str(out)])
    assert code == EXIT_NON_FINITE
    err = _one_error_line(capsys)
    assert ("NaN or infinite at step" in err or "diverged at step" in err) and "--lr" in err
    assert "nothing was written" in err
    assert not out.exists() and not list(tmp_path.iterdir())


def test_a_finite_but_diverged_run_stops_too(tmp_path, capsys):
    """Vanilla DIP at lr 1e6 stays finite (pixels near -3e6) but has nothing to do with the image: exit 3."""
    out = tmp_path / "out"
    code = main(["run", "--task", "denoise", "--image", "skimage:camera", "--size", "32", "--iterations", "50",
                 "--no-progress", "--method", "dip", "--lr", "1e6", "--stop", "none", "--out", str(out)])
    assert code == EXIT_NON_FINITE
    err = _one_error_line(capsys)
    assert "diverged at step" in err and "first estimate's range" in err and "nothing was written" in err
    assert not out.exists() and not list(tmp_path.iterdir())


def test_finite_guard_off_the_cpu_names_the_first_bad_step_without_waiting_each_step():
    from aseqdip.engine.loop import FiniteGuard
    from aseqdip.errors import NonFiniteError

    class State:
        iterations, output = 10, torch.zeros(1, 1, 4, 4)

    guard = FiniteGuard(torch.device("cuda"), every=3)  # the device only sets how often it looks
    state = State()
    for step, loss in ((1, 1.0), (2, float("nan")), (3, 1.0)):
        state.iteration, state.loss = step, torch.tensor(loss)
        if step < 3:
            guard.check(state)  # step 2 is bad, but the guard reads the device only every 3 steps
        else:
            with pytest.raises(NonFiniteError, match="at step 2 of 10"):
                guard.check(state)
    cpu = FiniteGuard(torch.device("cpu"))
    state.iteration, state.loss, state.output = 1, torch.tensor(1.0), torch.full((1, 1, 4, 4), float("inf"))
    with pytest.raises(NonFiniteError, match="network output became NaN or infinite at step 1"):
        cpu.check(state)


def test_each_dtype_has_its_rule_and_a_rescale_is_said(tmp_path, capsys):
    from PIL import Image

    from aseqdip.io import load_image

    hu = np.tile(np.array([[-1000, 0], [500, 1000]], np.int16), (8, 8))
    np.save(tmp_path / "hu.npy", hu)
    x = load_image(str(tmp_path / "hu.npy"))
    assert torch.allclose(x[0, 0, :2, :2], torch.tensor([[0.0, 0.5], [0.75, 1.0]]))  # negatives kept, not clipped
    assert "int16 values from -1000 to 1000 mapped linearly to [0, 1]" in capsys.readouterr().err

    u8 = np.arange(256, dtype=np.uint8).reshape(16, 16)
    np.save(tmp_path / "u8.npy", u8)
    assert torch.equal(load_image(str(tmp_path / "u8.npy"))[0, 0], torch.from_numpy(u8 / np.float32(255)))
    unit = np.linspace(0.2, 0.6, 256, dtype=np.float32).reshape(16, 16)
    np.save(tmp_path / "unit.npy", unit)
    assert torch.equal(load_image(str(tmp_path / "unit.npy"))[0, 0], torch.from_numpy(unit))  # already in [0, 1]
    np.save(tmp_path / "mask.npy", u8 > 100)
    assert set(load_image(str(tmp_path / "mask.npy")).unique().tolist()) == {0.0, 1.0}
    assert capsys.readouterr().err == ""  # no rescale, no warning
    Image.fromarray(u8.astype(np.uint16) * 257).save(tmp_path / "deep.png")
    assert torch.allclose(load_image(str(tmp_path / "deep.png"))[0, 0], torch.from_numpy(u8 / np.float32(255)))

    rgb = np.random.default_rng(0).random((16, 16, 3)).astype(np.float32)
    np.save(tmp_path / "hwc.npy", rgb)
    np.save(tmp_path / "chw.npy", np.moveaxis(rgb, -1, 0))
    assert torch.equal(load_image(str(tmp_path / "hwc.npy")), load_image(str(tmp_path / "chw.npy")))


def test_a_complex_image_keeps_its_phase_in_the_mri_task(tmp_path):
    from aseqdip.tasks.mri import MRI

    rng = np.random.default_rng(0)
    z = (rng.random((24, 24)) * np.exp(1j * rng.random((24, 24)))).astype(np.complex64)
    np.save(tmp_path / "z.npy", z)
    task = MRI(coils=2)
    x = task.load(str(tmp_path / "z.npy"))
    assert x.shape == (1, 2, 24, 24)
    problem = task.simulate(x, seed=0)
    expected = torch.from_numpy(np.stack([z.real, z.imag]) / np.abs(z).max())[None].float()
    assert torch.allclose(problem.x_true, expected) and "given complex image" in problem.settings["data"]


# ---- 5. truthful messages --------------------------------------------------------------------------------
def test_library_warnings_do_not_reach_the_terminal(tmp_path, capsys, monkeypatch):
    import aseqdip.io.images as images

    real = images.read_array

    def noisy(spec):
        warnings.warn("a library's note about EXIF data", UserWarning, stacklevel=1)
        return real(spec)

    monkeypatch.delenv("ASEQDIP_SHOW_WARNINGS", raising=False)
    monkeypatch.setattr(images, "read_array", noisy)
    assert main(["run", "--task", "denoise", "--image", str(tmp_path / "missing.png"), "--out",
                 str(tmp_path / "o")]) == EXIT_USAGE
    assert "no such file" in _one_error_line(capsys)


def test_an_interrupted_run_without_checkpoints_says_nothing_was_written(tmp_path, capsys, monkeypatch):
    import aseqdip.report

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(aseqdip.report, "save_run", interrupted)
    assert main(["run", "--task", "denoise", "--image", "skimage:camera", *TINY, "--out",
                 str(tmp_path / "out")]) == EXIT_INTERRUPTED
    assert "interrupted; nothing was written" in _one_error_line(capsys)
    assert list(tmp_path.iterdir()) == []


def test_an_interrupted_batch_says_what_it_kept(tmp_path, capsys, monkeypatch):
    import aseqdip.batch.executors as executors
    from aseqdip.io import load_image, write_png
    from aseqdip.metrics import to_numpy_image

    src = tmp_path / "in"
    src.mkdir()
    for name in ("camera", "coffee"):
        write_png(src / f"{name}.png", to_numpy_image(load_image(f"skimage:{name}", size=16)))
    real = executors.run_study
    calls = []

    def second_is_interrupted(job):
        calls.append(job.study.id)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(job)

    monkeypatch.setattr(executors, "run_study", second_is_interrupted)
    out = tmp_path / "out"
    assert main(["batch", "--task", "denoise", "--input", str(src), "--out", str(out), "--executor", "serial",
                 "--cpus-per-study", "1", "--iterations", "2", "--no-progress"]) == EXIT_INTERRUPTED
    err = _one_error_line(capsys)
    assert "1 of 2 studies are finished and kept" in err and "rerun the same command" in err
    assert "checkpoint" not in err  # the interrupted study had saved none
    assert (out / "camera" / "metrics.json").is_file() and (out / "results.csv").is_file()


def test_an_interrupted_batch_names_the_checkpoint_it_kept(tmp_path, capsys, monkeypatch):
    import aseqdip.batch.executors as executors
    from aseqdip.io import load_image, write_png
    from aseqdip.metrics import to_numpy_image

    src = tmp_path / "in"
    src.mkdir()
    write_png(src / "camera.png", to_numpy_image(load_image("skimage:camera", size=16)))

    def interrupted_after_a_checkpoint(job):
        (tmp_path / "out" / ".camera.checkpoint.pt").write_bytes(b"saved at step 2")
        raise KeyboardInterrupt

    monkeypatch.setattr(executors, "run_study", interrupted_after_a_checkpoint)
    assert main(["batch", "--task", "denoise", "--input", str(src), "--out", str(tmp_path / "out"), "--executor",
                 "serial", "--iterations", "4", "--checkpoint-every", "2", "--no-progress"]) == EXIT_INTERRUPTED
    err = _one_error_line(capsys)
    assert ".camera.checkpoint.pt" in err and "resumed there" in err
