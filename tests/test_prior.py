"""A learned start (``aseqdip prior fit``): fitted on measurements only, read back safely, refused when it does not
fit, and a start that reaches the data in fewer steps than random weights on an image it never saw."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from aseqdip.cli import main
from aseqdip.engine.warm import load_weights
from aseqdip.io import load_image, write_png
from aseqdip.metrics import to_numpy_image

COMMON = ["--task", "denoise", "--size", "32", "--method", "dip", "--precision", "fp32", "--device", "cpu",
          "--no-progress", "--network", "shallow_unet"]


@pytest.fixture(scope="module")
def prior(tmp_path_factory) -> Path:
    """A prior fitted on four grey images (20 Reptile updates of 10 DIP steps)."""
    root = tmp_path_factory.mktemp("prior")
    (root / "fit").mkdir()
    for name in ("camera", "moon", "coins", "page"):
        write_png(root / "fit" / f"{name}.png", to_numpy_image(load_image(f"skimage:{name}", size=32)))
    assert main(["prior", "fit", "--input", str(root / "fit"), *COMMON, "--meta-steps", "20", "--steps-per-update",
                 "10", "--out", str(root / "prior")]) == 0
    return root / "prior"


def _run(tmp_path: Path, name: str, *extra: str) -> dict:
    out = tmp_path / name
    code = main(["run", "--image", "skimage:brick", *COMMON, "--stop", "discrepancy", "--sure-sigma", "25",
                 "--iterations", "400", *extra, "--out", str(out)])
    assert code == 0
    return json.loads((out / "metrics.json").read_text())


def test_a_prior_is_written_with_its_record_and_read_back_without_running_code(prior):
    record = json.loads((prior / "prior.json").read_text())
    assert record["task"] == "denoise" and record["method"] == "dip" and record["network"] == "shallow_unet"
    assert record["meta"]["meta_steps"] == 20 and record["meta"]["total_steps"] == 200
    assert len(record["files"]) == 4 and all(v.startswith("sha256:") for v in record["files"].values())
    weights, about = load_weights(prior / "weights.pt")  # torch.load(weights_only=True) inside
    assert about["prior"] is True and about["method"] == "dip"
    again, _ = load_weights(prior / "weights.pt")
    assert all(torch.equal(weights.network[k], again.network[k]) for k in weights.network)
    assert len(record["inner_final_loss"]) == 20
    first = record["first_residual_over_noise"]
    assert first["median"] > 1 and not first["copies_its_measurements"]


def test_a_prior_that_copies_its_measurements_is_flagged(tmp_path, capsys):
    """Fitted to the noise (400 steps on one 16 px image), a start's first output sits below the noise level, where
    auto's rule never arms: prior.json and a warning say so."""
    (tmp_path / "fit").mkdir()
    write_png(tmp_path / "fit" / "camera.png", to_numpy_image(load_image("skimage:camera", size=16)))
    tiny = [a if a != "32" else "16" for a in COMMON]
    assert main(["prior", "fit", "--input", str(tmp_path / "fit"), *tiny, "--meta-steps", "1", "--steps-per-update",
                 "400", "--out", str(tmp_path / "p")]) == 0
    record = json.loads((tmp_path / "p" / "prior.json").read_text())
    assert record["first_residual_over_noise"]["copies_its_measurements"]
    assert record["first_residual_over_noise"]["median"] < 0.5
    assert "reproduces its own measurements" in capsys.readouterr().err


def test_a_prior_reaches_the_noise_level_in_fewer_steps_on_an_image_it_never_saw(prior, tmp_path):
    """The discrepancy rule stops when the residual reaches the noise level: from the prior it gets there sooner."""
    random = _run(tmp_path, "random")
    started = _run(tmp_path, "prior", "--init", str(prior))
    assert started["iterations"] * 2 <= random["iterations"], (started["iterations"], random["iterations"])
    assert started["init"] == str(prior)


def test_a_prior_of_another_network_or_task_is_refused_in_one_line(prior, tmp_path, capsys):
    other = [a if a != "shallow_unet" else "medium_unet" for a in COMMON]
    code = main(["run", "--image", "skimage:brick", *other, "--iterations", "2", "--init", str(prior),
                 "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("aseqdip: error: --init") and "medium_unet" in err
    inpaint = [a if a != "denoise" else "inpaint" for a in COMMON]
    assert main(["run", "--image", "skimage:brick", *inpaint, "--iterations", "2", "--init", str(prior),
                 "--out", str(tmp_path / "o")]) == 2
    assert "fitted for task denoise, not inpaint" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_bad_fit_options_are_refused_before_any_work(tmp_path, capsys):
    (tmp_path / "fit").mkdir()
    assert main(["prior", "fit", "--input", str(tmp_path / "fit"), *COMMON, "--out", str(tmp_path / "p")]) == 2
    assert "no studies found" in capsys.readouterr().err
    write_png(tmp_path / "fit" / "a.png", to_numpy_image(load_image("skimage:camera", size=32)))
    assert main(["prior", "fit", "--input", str(tmp_path / "fit"), *COMMON, "--meta-lr", "2",
                 "--out", str(tmp_path / "p")]) == 2
    assert "--meta-lr" in capsys.readouterr().err
    assert main(["prior", "fit", "--input", str(tmp_path / "fit"), *COMMON[:-2], "--network", "shallow_unet",
                 "--method", "fbp", "--out", str(tmp_path / "p")]) == 2
    assert "no network" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()
