"""The tuning volume behind ``aseqdip volume``'s warm-start defaults, and the runs that chose them.

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/volume_tuning.py OUT_FOLDER [--mix 1,0.5,0.25] [--cold]

No reported image is used. The volume is pydicom's MR_small (one real 64x64 MR slice, a tuning image of
docs/auto.md) repeated 10 times, slice k zoomed by 1 + 0.02 (k - 4.5) and shifted by 0.4 (k - 4.5) pixels
down the rows (cubic interpolation): neighbouring slices nearly the same image, as in a volume. Each run is
``aseqdip volume --task denoise --sigma 25 --stop auto --precision fp32`` on it, with ``--warm-mix M``
(or ``--cold``); the volume.json and slices.csv of each go to OUT_FOLDER/<variant>/ and a summary line is
printed. The figures quoted in ``aseqdip/volume.py`` (WARM_MIX) come from these runs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np


def pseudo_volume(path: Path) -> None:
    """Write the tuning volume (10, 64, 64) float32 to ``path``."""
    import pydicom
    from pydicom.data import get_testdata_file
    from scipy import ndimage

    image = pydicom.dcmread(get_testdata_file("MR_small.dcm")).pixel_array.astype(np.float64)
    centre = np.array(image.shape) / 2
    slices = []
    for k in range(10):
        matrix = np.eye(2) / (1 + 0.02 * (k - 4.5))
        offset = centre - matrix @ centre - np.array([0.4 * (k - 4.5), 0.0])
        slices.append(ndimage.affine_transform(image, matrix, offset=offset, order=3, mode="nearest"))
    np.save(path, np.clip(np.stack(slices), 0, None).astype(np.float32))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--mix", default="1,0.5,0.25")
    p.add_argument("--cold", action="store_true", help="also the cold volume")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    volume = out / "mr_small_pseudo.npy"
    pseudo_volume(volume)
    variants = {f"mix{m}": ["--warm-mix", m] for m in args.mix.split(",") if m}
    if args.cold:
        variants["cold"] = ["--cold"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for name, flags in variants.items():
        argv = [sys.executable, "-m", "aseqdip.cli", "volume", "--task", "denoise", "--sigma", "25", "--input",
                str(volume), "--stop", "auto", "--precision", "fp32", "--seed", "0", "--no-progress",
                "--out", str(out / name), *flags]
        subprocess.run(argv, env=env, check=True, capture_output=True)
        s = json.loads((out / name / "volume.json").read_text())
        print(f"{name}: mean PSNR {s['mean_psnr']} dB, SSIM {s['mean_ssim']}, {s['total_steps']} steps", flush=True)


if __name__ == "__main__":
    main()
