"""Where an inpainting run loses: PSNR over the hole and over the measured pixels, from committed study rows.

    .venv/bin/python -m benchmarks.hole_split            # prints the table
    .venv/bin/python -m benchmarks.hole_split --write    # and writes benchmarks/results/recipe-study/HOLES.md

Issue 37 asks why aSeqDIP loses to Vanilla DIP on box holes. The whole-image PSNR mixes two things: how
well a method fits the pixels it was given, and what it puts where nothing was measured. This splits the
returned image (each row's committed ``recon.png``, the image ``--stop auto`` returned, 8-bit) into the two
regions, beside the two images no network made: the masked input and the classical biharmonic fill. Truth
and mask are simulated again from the row's task options, image and seed (no training). The hole PSNR
uses the truth, as every PSNR here does; no run sees it.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aseqdip.metrics import to_numpy_image
from aseqdip.physics.holdout import measured_entries
from aseqdip.physics.masks import fill_hole
from benchmarks.recipe_figure import read_png
from benchmarks.recipe_study import RESULTS, Row, plan

# (method, variant, label): the published methods and the recipes the box-hole default was chosen from
METHODS = (("dip", "paper", "Vanilla DIP"), ("aseqdip", "paper", "aSeqDIP as written"),
           ("aseqdip", "authors", "aSeqDIP, authors' recipe"),
           ("aseqdip", "biharmonic-warmup", "aSeqDIP, library under auto's stop (the default before)"),
           ("aseqdip", "biharmonic-warmup-k1", "aSeqDIP, library (default: K = 1)"))


@dataclass(frozen=True)
class Split:
    """PSNR (dB) of one image over the whole image, the measured pixels and the hole."""

    whole: float
    measured: float
    hole: float


def psnr_split(image: np.ndarray, truth: np.ndarray, hole: np.ndarray) -> Split:
    """``image`` and ``truth`` (H, W, C) in [0, 1]; ``hole`` (H, W) True where nothing was measured."""
    err = (np.clip(image, 0.0, 1.0) - truth) ** 2

    def db(values: np.ndarray) -> float:
        mse = float(values.mean())
        return float("inf") if mse == 0.0 else float(10.0 * np.log10(1.0 / mse))

    return Split(db(err), db(err[~hole]), db(err[hole]))


def _channels_last(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 3 else image[..., None]


def simulated(row: Row) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(truth, masked input, biharmonic fill, hole) of ``row``'s problem, as (H, W, C) images and an (H, W) mask."""
    problem = row.problem()
    measured = measured_entries(problem.physics, problem.y)
    filled = fill_hole(problem.x0, measured, "biharmonic")
    hole = ~measured.detach().cpu().numpy()[0].all(axis=0)

    def image(x: object) -> np.ndarray:
        return _channels_last(to_numpy_image(problem.to_image(x)))

    return image(problem.x_true), image(problem.x0), image(filled), hole


def split_rows(results: Path, settings: Iterable[tuple[str, int]]) -> list[tuple[str, int, str, str, Split, int | None]]:
    """(setting, size, image, label, split, steps) for every landed auto row of the box-hole settings asked."""
    wanted = set(settings)
    samples: dict[tuple[str, int, str], Row] = {}
    for row in plan():
        if row.task == "inpaint" and row.kind == "auto" and (row.setting, row.size) in wanted:
            samples.setdefault((row.setting, row.size, row.image), row)
    out = []
    for (setting, size, image), row in samples.items():
        found = {label: results / f"inpaint-{setting}-{size}px-{image}-{m}-{v}-auto" for m, v, label in METHODS}
        if not any((d / "recon.png").is_file() for d in found.values()):
            continue
        truth, masked, filled, hole = simulated(row)
        out.append((setting, size, image, "masked input", psnr_split(masked, truth, hole), None))
        out.append((setting, size, image, "biharmonic fill (no network)", psnr_split(filled, truth, hole), 0))
        for label, where in found.items():
            if (where / "recon.png").is_file():
                steps = json.loads((where / "metrics.json").read_text())["iterations"]
                returned = _channels_last(read_png(where / "recon.png"))
                out.append((setting, size, image, label, psnr_split(returned, truth, hole), steps))
    return out


def _db(value: float) -> str:
    return "exact" if value == float("inf") else f"{value:.2f}"


def table(rows: list[tuple[str, int, str, str, Split, int | None]]) -> str:
    lines = ["| setting | px | image | image returned | whole | measured pixels | hole | steps |",
             "|---|---|---|---|---|---|---|---|"]
    for setting, size, image, label, s, steps in rows:
        lines.append(f"| {setting} | {size} | {image} | {label} | {_db(s.whole)} | {_db(s.measured)} | {_db(s.hole)} | "
                     f"{'' if steps is None else steps} |")
    means: dict[tuple[str, int, str], list[Split]] = {}
    for setting, size, _image, label, s, _steps in rows:
        means.setdefault((setting, size, label), []).append(s)
    lines += ["", "Means over the images of each setting (dB; n images):", "",
              "| setting | px | image returned | n | whole | measured pixels | hole |", "|---|---|---|---|---|---|---|"]
    for (setting, size, label), splits in means.items():
        mean = [float(np.mean([getattr(s, f) for s in splits])) for f in ("whole", "measured", "hole")]
        lines.append(f"| {setting} | {size} | {label} | {len(splits)} | {' | '.join(_db(v) for v in mean)} |")
    return "\n".join(lines)


SETTINGS = (("hiar0.25", 64), ("hiar0.1", 64), ("hiar0.25-heldout", 64), ("hiar0.25", 128), ("hiar0.1", 128))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--results", type=Path, default=RESULTS)
    p.add_argument("--write", action="store_true", help="write HOLES.md beside the rows")
    args = p.parse_args(argv)
    text = table(split_rows(args.results, SETTINGS))
    print(text)
    if args.write:
        header = ("# Box inpainting: the hole and the measured pixels apart\n\nWritten by `python -m "
                  "benchmarks.hole_split --write` from the recipe study's committed rows (the image `--stop auto` "
                  "returned, 8-bit PNG); PSNR in dB against the truth, which no run sees.\n\n")
        (args.results / "HOLES.md").write_text(header + text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
