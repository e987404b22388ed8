"""Seconds per iteration of every DIP-family method on one denoising problem (timings, not a test).

    .venv/bin/python benchmarks/methods_speed.py --size 128 --iterations 30 [--device cpu] [--methods a,b]

Each method runs ``--iterations`` steps on scikit-image's astronaut (sigma 25) after a 3-step warm-up
run, with the ground-truth monitor off, and the script prints ms/iteration. Refguided gets a reference
set of other bundled images. ES-DIP's window/patience and SGLD's burn-in are left at their defaults,
which the short run does not reach, so the numbers are the per-step cost only.
"""

from __future__ import annotations

import argparse
import time

import torch

from aseqdip.io import load_image
from aseqdip.methods import METHODS
from aseqdip.tasks import Denoise

DIP_FAMILY = ("aseqdip", "dip", "selfguided", "tvdip", "esdip", "sgld", "refguided", "rethinking")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--iterations", type=int, default=30)
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="auto")
    p.add_argument("--methods", default=",".join(DIP_FAMILY))
    args = p.parse_args()
    problem = Denoise(25).simulate(load_image("skimage:astronaut", size=args.size), seed=0)
    refs = [load_image(f"skimage:{name}", size=args.size) for name in ("coffee", "chelsea", "rocket")]
    print(f"denoise {args.size}x{args.size}, {args.iterations} steps, torch threads {torch.get_num_threads()}")
    for name in args.methods.split(","):
        extra = {"references": refs} if name == "refguided" else {}
        common = dict(device=args.device, precision=args.precision, **extra)
        METHODS[name](iterations=3, **common).reconstruct(problem.y, problem.physics, x0=problem.x0)  # warm-up
        method = METHODS[name](iterations=args.iterations, **common)
        start = time.perf_counter()
        result = method.reconstruct(problem.y, problem.physics, x0=problem.x0)
        wall = time.perf_counter() - start
        print(f"{name:11s} {1000 * result.seconds_per_iteration:8.1f} ms/it   "
              f"(loop {result.seconds:.2f} s, wall {wall:.2f} s, {result.info['precision']}, {result.info['device']})",
              flush=True)


if __name__ == "__main__":
    main()
