"""The tuning volume behind ``aseqdip volume``'s warm-start defaults, and the runs that chose them.

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/volume_tuning.py OUT_FOLDER [--mix 1,0.5,0.25] [--cold] \\
        [--run "NAME=--warm-mix 0.75 --warm-fraction 0.33" ...] [--task-flags "--task mri --acceleration 4 --sigma 5"]

No reported image is used. The volume is pydicom's MR_small (one real 64x64 MR slice, a tuning image of
docs/auto.md; ``--source ct_small``: CT_small in the CT task's HU window, for ``--task ct``) repeated 10
times, slice k zoomed by 1 + 0.02 (k - 4.5) and shifted by 0.4 (k - 4.5) pixels
down the rows (cubic interpolation): neighbouring slices nearly the same image, as in a volume. ``--source
anatomical`` is a real volume instead (nibabel's test T1, 10 slices; give ``--size 64`` in ``--task-flags``),
whose neighbours differ as much as a real study's do. Each run is
``aseqdip volume --task denoise --sigma 25 --stop auto --precision fp32`` on it (``--task-flags`` replaces
``--task denoise --sigma 25``, e.g. with MRI's), with ``--warm-mix M``
(or ``--cold``, or the volume options of each ``--run NAME=FLAGS``); the volume.json and slices.csv of each
go to OUT_FOLDER/<variant>/, a summary line is printed (mean PSNR/SSIM, total steps, the warm ceiling and
each slice's steps in slice order) and OUT_FOLDER/summary.json collects them. A variant whose volume.json
is already in OUT_FOLDER is not rerun. The figures quoted in ``aseqdip/volume/defaults.py`` (WARM_MIX,
WARM_FRACTION, the warm slices' ramp) come from these runs.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np

SOURCES = {"mr_small": "MR_small.dcm", "ct_small": "CT_small.dcm"}  # pydicom's own test slices (tuning images)
# a real volume for tuning, never reported on: nibabel's test T1 (33 x 41 x 25, 2 mm isotropic), its 10
# middle slices along the last axis; neighbours 23-29 dB PSNR apart (emri_small's, reported on: ~21 dB)
REAL_SOURCES = {"anatomical": ("anatomical.nii", slice(7, 17))}


def real_volume(path: Path, source: str) -> None:
    """Write (10, H, W) float32 slices of a real tuning volume that ships with nibabel to ``path``."""
    import nibabel as nib

    name, keep = REAL_SOURCES[source]
    data = np.asarray(nib.load(Path(nib.__file__).parent / "tests" / "data" / name).dataobj, dtype=np.float32)
    np.save(path, np.ascontiguousarray(np.moveaxis(data, -1, 0)[keep]))


def pseudo_volume(path: Path, source: str = "mr_small") -> None:
    """Write the tuning volume (10, H, W) float32 to ``path``: ``source`` zoomed and shifted per slice.

    CT_small is put through the CT task's HU window first, so the .npy holds what the CT task reconstructs
    ([0, 1]; ``aseqdip volume`` scales a non-DICOM input's min..max to [0, 1], which then changes nothing).
    """
    import pydicom
    from pydicom.data import get_testdata_file
    from scipy import ndimage

    ds = pydicom.dcmread(get_testdata_file(SOURCES[source]))
    image = ds.pixel_array.astype(np.float64)
    if source == "ct_small":
        from aseqdip.io.dicom import CT_WINDOW, hu_window

        slope, intercept = float(getattr(ds, "RescaleSlope", 1)), float(getattr(ds, "RescaleIntercept", 0))
        image = np.asarray(hu_window(image * slope + intercept, *CT_WINDOW), dtype=np.float64)
    centre = np.array(image.shape) / 2
    slices = []
    for k in range(10):
        matrix = np.eye(2) / (1 + 0.02 * (k - 4.5))
        offset = centre - matrix @ centre - np.array([0.4 * (k - 4.5), 0.0])
        slices.append(ndimage.affine_transform(image, matrix, offset=offset, order=3, mode="nearest"))
    volume = np.clip(np.stack(slices), 0, None if source == "mr_small" else 1)
    np.save(path, volume.astype(np.float32))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--source", choices=sorted(SOURCES) + sorted(REAL_SOURCES), default="mr_small",
                   help="the slice the pseudo-volume is made of, or a real tuning volume (default: %(default)s)")
    p.add_argument("--mix", default="1,0.5,0.25")
    p.add_argument("--cold", action="store_true", help="also the cold volume")
    p.add_argument("--run", action="append", default=[], metavar="NAME=FLAGS",
                   help="a variant NAME run with the volume options FLAGS (repeatable)")
    p.add_argument("--task-flags", default="--task denoise --sigma 25",
                   help="the task and its options, as aseqdip volume takes them (default: %(default)s)")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.source in REAL_SOURCES:
        volume = out / f"{args.source}.npy"
        real_volume(volume, args.source)
    else:
        volume = out / f"{args.source}_pseudo.npy"
        pseudo_volume(volume, args.source)
    variants = {f"mix{m}": ["--warm-mix", m] for m in args.mix.split(",") if m}
    if args.cold:
        variants["cold"] = ["--cold"]
    for spec in args.run:
        name, _, flags = spec.partition("=")
        variants[name.strip()] = shlex.split(flags)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    summary_path = out / "summary.json"
    collected = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    for name, flags in variants.items():
        if not (out / name / "volume.json").exists():
            argv = [sys.executable, "-m", "aseqdip.cli", "volume", *shlex.split(args.task_flags), "--input",
                    str(volume), "--stop", "auto", "--precision", "fp32", "--seed", "0", "--no-progress",
                    "--out", str(out / name), "--resume", *flags]
            done = subprocess.run(argv, env=env, capture_output=True, text=True)
            if done.returncode:
                sys.exit(f"{name}: aseqdip volume failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
        s = json.loads((out / name / "volume.json").read_text())
        with open(out / name / "slices.csv", newline="") as f:
            rows = sorted(csv.DictReader(f), key=lambda r: int(r["index"]))
        collected[name] = {"flags": flags, "mean_psnr": s["mean_psnr"], "mean_ssim": s["mean_ssim"],
                           "total_steps": s["total_steps"], "warm_ceiling": s["warm_iterations"],
                           "warm_mix": s["warm_mix"], "warm_ramp": s.get("warm_ramp"),
                           "steps": [int(r["steps"]) for r in rows], "psnr": [float(r["psnr"]) for r in rows],
                           "ssim": [float(r["ssim"]) for r in rows]}
        summary_path.write_text(json.dumps(collected, indent=1) + "\n")
        print(f"{name}: mean PSNR {s['mean_psnr']} dB, SSIM {s['mean_ssim']}, {s['total_steps']} steps, ceiling "
              f"{s['warm_iterations']}, steps per slice {collected[name]['steps']}", flush=True)


if __name__ == "__main__":
    main()
