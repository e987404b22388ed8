"""Wall time of one batch of studies run one at a time and on the local Ray default, side by side.

    .venv/bin/python benchmarks/batch_walltime.py [--studies 6] [--size 64] [--iterations 150]

The studies are scikit-image's bundled photographs (denoising, sigma 25, aSeqDIP). "One at a time" is
``--executor serial``: each study gets every core as torch threads. "Ray" is the default executor with
no address: a private local instance, one CPU per study, so as many studies run at once as there are
cores. Both runs use fresh output folders; the JSON (machine, torch threads, wall seconds, ratio) goes
to ``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import tempfile
from pathlib import Path

import torch

from aseqdip.batch import run_batch
from aseqdip.cli import options_from_argv
from aseqdip.io import load_image, write_png
from aseqdip.metrics import to_numpy_image
from aseqdip.report import cpu_model

IMAGES = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "camera", "hubble_deep_field")




def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--studies", type=int, default=6)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--iterations", type=int, default=150)
    p.add_argument("--out", default="benchmarks/results")
    args = p.parse_args()
    if not 1 <= args.studies <= len(IMAGES):
        p.error(f"--studies must be between 1 and {len(IMAGES)}")
    names = list(IMAGES[: args.studies])
    options = ["--sigma", "25", "--iterations", str(args.iterations), "--seed", "0"]
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "studies"
        src.mkdir()
        for name in names:
            write_png(src / f"{name}.png", to_numpy_image(load_image(f"skimage:{name}", size=args.size)))
        walls = {}
        for label, kwargs in (("one_at_a_time", {"executor": "serial"}), ("ray_local", {"executor": "ray"})):
            summary = run_batch("denoise", str(src), Path(tmp) / label, options, read_options=options_from_argv, progress=False,
                                **kwargs)
            assert summary.done == len(names) and summary.failed == 0, summary.line()
            walls[label] = summary.wall_seconds
            print(f"{label:14s} {summary.wall_seconds:7.1f} s for {len(names)} studies", flush=True)
    ratio = walls["one_at_a_time"] / walls["ray_local"]
    print(f"Ray local default is {ratio:.2f}x the throughput of one at a time")
    result = {"machine": cpu_model(), "cores": os.cpu_count(), "torch": torch.__version__,
              "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
              "studies": names, "size": args.size, "task": "denoise sigma 25", "method": "aseqdip",
              "iterations": args.iterations, "wall_seconds": walls, "speedup_ray_vs_one_at_a_time": round(ratio, 3),
              "one_at_a_time": "--executor serial: studies in turn, torch threads = all cores",
              "ray_local": "default executor, no --address: local Ray instance (start-up included), 1 CPU per study"}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"batch-walltime-{args.studies}x{args.size}px.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
