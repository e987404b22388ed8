"""What the sinogram's MAD noise estimate reads on CT tuning slices, with and without photon noise (issue 18).

    .venv/bin/python -m benchmarks.ct_noise_floor [--out benchmarks/results/noise-estimators/ct-sinogram-table.md]

Without a photon count, ``--stop auto`` on CT takes its noise level from the MAD of the post-log
sinogram's second difference along the detector (``physics/noise_level.py``). A sinogram is smooth along
the detector only where the object is: the edges of a 64-128 px slice put signal into the finest
differences too. This table measures that floor: the estimate on a noise-free sinogram, beside the noise
a photon count actually draws (RMS of y - A x, an oracle) and the estimate on that noisy sinogram. Higher
differences (4th, 6th: MAD scaled by sqrt(C(2n, n))) are shown as the obvious alternative.

Slices: the CT tuning slices of docs/auto.md (pydicom's CT_small and eCT_Supplemental) and scikit-image's
Shepp-Logan phantom, none of which the study reports; the ct task's HU window, sizes 64 and 128, 18 and
30 views, seed 0.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch

from aseqdip.physics.noise_level import MAD_TO_SIGMA, realised_noise
from aseqdip.tasks.ct import CT

PHOTONS = (None, 1e6, 1e5, 1e4)


def difference_mad(y: torch.Tensor, order: int) -> float:
    """MAD estimate of sigma from the ``order``-th difference along the detector (white noise scaled to sigma)."""
    d = y.double()
    for _ in range(order):
        d = d[..., 1:, :] - d[..., :-1, :]
    return float(d.abs().median()) * MAD_TO_SIGMA / math.sqrt(math.comb(2 * order, order))


def slices() -> dict[str, str]:
    from pydicom.data import get_testdata_file

    return {"CT_small": get_testdata_file("CT_small.dcm"), "eCT_Supplemental": get_testdata_file("eCT_Supplemental.dcm"),
            "Shepp-Logan": "skimage:shepp_logan_phantom"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=None, help="write the table here (Markdown)")
    args = p.parse_args(argv)
    torch.manual_seed(0)
    lines = ["| slice | px | views | photons | noise drawn (oracle) | 2nd difference (auto's) | 4th | 6th |",
             "|---|---|---|---|---|---|---|---|"]
    for name, spec in slices().items():
        for size in (64, 128):
            for views in (18, 30):
                for photons in PHOTONS:
                    task = CT(views=views, photons=photons)
                    problem = task.simulate(task.load(spec, size=size), seed=0)
                    drawn = realised_noise(problem.physics, problem.y, problem.x_true,
                                           torch.ones_like(problem.y, dtype=torch.bool))
                    reads = " | ".join(f"{difference_mad(problem.y, n):.4f}" for n in (2, 4, 6))
                    lines.append(f"| {name} | {size} | {views} | {'none' if photons is None else f'{photons:.0e}'} | "
                                 f"{drawn:.4f} | {reads} |")
                    print(lines[-1], flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
