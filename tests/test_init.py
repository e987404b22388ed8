"""Starting a run from an earlier run's fitted network (``--save-weights``, then ``--init``): the reuse of a
fitted model that DIP users ask for, read back without running any code from the file."""

from __future__ import annotations

import json

import torch

from aseqdip.cli import main

RUN = ["run", "--task", "denoise", "--image", "skimage:camera", "--size", "32", "--method", "dip", "--stop", "none",
       "--precision", "fp32", "--device", "cpu", "--no-progress", "--network", "shallow_unet"]


def _metrics(folder) -> dict:
    return json.loads((folder / "metrics.json").read_text())


def test_a_run_started_from_a_fitted_network_begins_where_that_run_ended(tmp_path):
    fitted, warm, cold = tmp_path / "fitted", tmp_path / "warm", tmp_path / "cold"
    assert main([*RUN, "--iterations", "60", "--save-weights", "--out", str(fitted)]) == 0
    saved = torch.load(fitted / "weights.pt", weights_only=True)  # plain tensors and strings: no code runs
    assert saved["about"]["method"] == "dip" and saved["about"]["hyperparameters"]["network"] == "shallow_unet"
    assert main([*RUN, "--iterations", "1", "--init", str(fitted), "--out", str(warm)]) == 0
    assert main([*RUN, "--iterations", "1", "--out", str(cold)]) == 0
    first, after, cold_start = _metrics(fitted)["psnr"], _metrics(warm)["psnr"], _metrics(cold)["psnr"]
    assert abs(after - first) < 0.5, (first, after)  # one step on from the fitted network's output
    assert after > cold_start + 3.0, (after, cold_start)
    assert _metrics(warm)["init"] == str(fitted)
    assert _metrics(warm)["fingerprint"]["--init"].startswith("folder sha256:")  # its contents, not its path


def test_weights_of_another_network_or_no_weights_file_are_refused_in_one_line(tmp_path, capsys):
    fitted = tmp_path / "fitted"
    assert main([*RUN, "--iterations", "2", "--save-weights", "--out", str(fitted)]) == 0
    capsys.readouterr()
    other = [a if a != "shallow_unet" else "medium_unet" for a in RUN]
    assert main([*other, "--iterations", "2", "--init", str(fitted), "--out", str(tmp_path / "o1")]) == 2
    err = capsys.readouterr().err
    assert "of network shallow_unet, this run's network is medium_unet" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o1").exists()
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a torch file")
    for bad in (str(garbage), str(tmp_path / "missing")):
        assert main([*RUN, "--iterations", "2", "--init", bad, "--out", str(tmp_path / "o2")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("aseqdip: error: --init") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o2").exists()


def test_a_volume_starts_its_cold_slices_from_the_given_network(tmp_path):
    """aseqdip volume --init: the middle slice (every slice with --cold) starts from the fitted network."""
    import numpy as np
    from skimage.data import camera
    from skimage.transform import resize

    image = resize(camera().astype(np.float32) / 255.0, (32, 32), anti_aliasing=True).astype(np.float32)
    np.save(tmp_path / "slice.npy", image)
    np.save(tmp_path / "volume.npy", np.stack([np.roll(image, k, axis=1) for k in (-1, 0, 1)]))
    fitted = tmp_path / "fitted"
    run = [a if a != "skimage:camera" else str(tmp_path / "slice.npy") for a in RUN]
    run = [a for i, a in enumerate(run) if a != "--size" and run[i - 1] != "--size"]
    assert main([*run, "--iterations", "60", "--save-weights", "--out", str(fitted)]) == 0
    volume = ["volume", "--task", "denoise", "--input", str(tmp_path / "volume.npy"), "--method", "dip", "--cold",
              "--stop", "none", "--iterations", "1", "--precision", "fp32", "--device", "cpu", "--no-progress",
              "--network", "shallow_unet"]
    assert main([*volume, "--init", str(fitted), "--out", str(tmp_path / "from")]) == 0
    assert main([*volume, "--out", str(tmp_path / "cold")]) == 0
    started = json.loads((tmp_path / "from" / "volume.json").read_text())
    cold = json.loads((tmp_path / "cold" / "volume.json").read_text())
    assert started["init"] == str(fitted) and started["fingerprint"]["--init"].startswith("folder sha256:")
    assert started["mean_psnr"] > cold["mean_psnr"] + 3.0, (started["mean_psnr"], cold["mean_psnr"])


def test_every_study_of_a_batch_starts_from_the_given_network(tmp_path):
    from aseqdip.batch import run_batch
    from aseqdip.cli import options_from_argv
    from aseqdip.io import load_image, write_png
    from aseqdip.metrics import to_numpy_image

    studies = tmp_path / "studies"
    studies.mkdir()
    for name in ("camera", "moon"):
        write_png(studies / f"{name}.png", to_numpy_image(load_image(f"skimage:{name}", size=32)))
    fitted = tmp_path / "fitted"
    assert main([*RUN, "--iterations", "60", "--save-weights", "--out", str(fitted)]) == 0
    shared = RUN[5:] + ["--iterations", "1", "--init", str(fitted)]  # the options after --image
    summary = run_batch("denoise", str(studies), tmp_path / "batch", shared, read_options=options_from_argv,
                        executor="serial", cpus_per_study=1, progress=False)
    assert summary.done == 2 and summary.failed == 0
    for name in ("camera", "moon"):
        assert _metrics(next((tmp_path / "batch").glob(f"{name}*")))["init"] == str(fitted)
    assert _metrics(next((tmp_path / "batch").glob("camera*")))["psnr"] > 20  # one step from the fitted network
