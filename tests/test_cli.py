"""The aseqdip command end to end, and a clear one-line error (exit 2, nothing written) for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from aseqdip.cli import main

TINY = ["--size", "40", "--iterations", "6", "--no-progress", "--track-every", "2", "--precision", "fp32"]


@pytest.mark.parametrize(("task", "method", "extra"), [
    ("denoise", "aseqdip", ["--sigma", "25"]),
    ("inpaint", "dip", ["--hiar", "0.25"]),
    ("inpaint", "aseqdip", ["--mask", "random", "--missing", "0.7"]),
])
def test_run_writes_every_output(tmp_path, task, method, extra):
    out = tmp_path / "out"
    code = main(["run", "--task", task, "--image", "skimage:astronaut", "--method", method, "--out", str(out),
                 *TINY, *extra])
    assert code == 0
    for name in ("recon.png", "recon.npy", "measurement.png", "metrics.json", "psnr_curve.png", "comparison.png"):
        assert (out / name).is_file(), name
    m = json.loads((out / "metrics.json").read_text())
    for key in ("task", "method", "psnr", "ssim", "psnr_measurement", "seconds", "iterations", "seed",
                "hyperparameters", "psnr_oracle_best", "iteration_oracle_best", "iteration_returned"):
        assert key in m, key
    assert m["task"] == task and m["method"] == method and m["iterations"] == 6
    assert m["hyperparameters"]["iterations"] == 6
    assert m["environment"]["torch_threads"] == torch.get_num_threads()  # timings are read with it
    assert np.load(out / "recon.npy").shape == (3, 40, 40)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "staging folder left behind"


def _bad(tmp_path: Path, capsys, args: list[str]) -> str:
    out = tmp_path / "out"
    code = main([*args, "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("aseqdip: error:"), err
    assert "Traceback" not in err
    assert not out.exists() and not list(tmp_path.glob(".out*")), "half-written output"
    return err


def test_missing_image(tmp_path, capsys):
    assert "no such file" in _bad(tmp_path, capsys, ["run", "--task", "denoise", "--image", str(tmp_path / "nope.png")])


def test_unreadable_image(tmp_path, capsys):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"this is not a png")
    assert "not a readable image" in _bad(tmp_path, capsys, ["run", "--task", "denoise", "--image", str(bad)])


def test_unknown_task(tmp_path, capsys):
    assert "unknown task" in _bad(tmp_path, capsys, ["run", "--task", "sharpen", "--image", "skimage:camera"])


def test_unknown_method(tmp_path, capsys):
    err = _bad(tmp_path, capsys, ["run", "--task", "denoise", "--image", "skimage:camera", "--method", "magic"])
    assert "unknown method" in err


def test_negative_sigma(tmp_path, capsys):
    err = _bad(tmp_path, capsys, ["run", "--task", "denoise", "--image", "skimage:camera", "--sigma", "-5"])
    assert "--sigma" in err


@pytest.mark.parametrize("hiar", ["0", "1", "1.5", "-0.1"])
def test_hiar_outside_open_unit_interval(tmp_path, capsys, hiar):
    err = _bad(tmp_path, capsys, ["run", "--task", "inpaint", "--image", "skimage:camera", "--hiar", hiar])
    assert "--hiar" in err


def test_size_zero(tmp_path, capsys):
    err = _bad(tmp_path, capsys, ["run", "--task", "denoise", "--image", "skimage:camera", "--size", "0"])
    assert "--size" in err


def test_unknown_option(tmp_path, capsys):
    assert "unrecognized" in _bad(tmp_path, capsys, ["run", "--task", "denoise", "--image", "skimage:camera", "--x"])


def test_image_with_nan_pixels(tmp_path, capsys):
    arr = np.random.default_rng(0).random((16, 16)).astype(np.float32)
    arr[3, 4] = np.nan
    np.save(tmp_path / "nan.npy", arr)
    err = _bad(tmp_path, capsys, ["run", "--task", "denoise", "--image", str(tmp_path / "nan.npy")])
    assert "NaN" in err


def test_a_failed_run_leaves_no_output(tmp_path, monkeypatch):
    import aseqdip.report as report

    def explode(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(report, "write_json", explode)
    with pytest.raises(RuntimeError):
        main(["run", "--task", "denoise", "--image", "skimage:camera", "--out", str(tmp_path / "out"), *TINY])
    assert list(tmp_path.iterdir()) == []


def test_the_comparison_zooms_into_where_the_error_is_largest():
    from aseqdip.plots import error_box

    error = np.zeros((64, 48))
    error[40:50, 5:15] = 1.0  # one bad region, off centre
    top, left, side = error_box(error)
    assert side == 12
    assert top <= 40 and top + side >= 50 and left <= 5 and left + side >= 15
