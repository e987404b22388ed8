"""The paper's Figure 5, our analogue: one row per task, from the recipe study's committed rows (issue 37).

    .venv/bin/python -m benchmarks.recipe_figure      # writes benchmarks/results/recipe-study/figure5.png

Columns: ground truth, the degraded measurement (or first estimate), Vanilla DIP, Self-Guided DIP, aSeqDIP as
the paper writes it, and aSeqDIP with this library's default recipe for the task, each the image the
default ``--stop auto`` returned (the rows' committed ``recon.png``), PSNR / SSIM under it. The truth and the
measurement are simulated again from the row's own task options, image and seed (cheap, no training). A
task appears once all four methods' rows of one image have landed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from aseqdip.metrics import to_numpy_image
from aseqdip.recipes import default_recipe
from benchmarks.recipe_study import RESULTS, plan, recipe_variant

SETTINGS = (("inpaint", "hiar0.25", 64), ("mri", "4x", 64), ("mri", "8x", 64), ("inpaint", "hiar0.1", 64))
METHODS = (("dip", "paper", "Vanilla DIP"), ("selfguided", "paper", "Self-Guided DIP"),
           ("aseqdip", "paper", "aSeqDIP as written"))


def panels_for(task: str, setting: str, size: int, results: Path) -> list[tuple[str, np.ndarray, str]] | None:
    """The row's six panels for the first image with every method's auto row landed, else None."""
    rows = {r.ident: r for r in plan() if r.kind == "auto"}
    default = default_recipe(task)
    wanted = [*METHODS, ("aseqdip", recipe_variant(task, default), f"aSeqDIP, default ({default})")]
    images = []
    for r in rows.values():
        if (r.task, r.setting, r.size) == (task, setting, size) and r.image not in [i for i, _ in images]:
            images.append((r.image, r))
    for image, sample in images:
        idents = [f"{task}-{setting}-{size}px-{image}-{m}-{v}-auto" for m, v, _ in wanted]
        if not all((results / i / "recon.png").is_file() for i in idents):
            continue
        problem = sample.problem()
        before = problem.metrics(problem.x0)
        out = [("ground truth", to_numpy_image(problem.to_image(problem.x_true)), image),
               (problem.measurement_label, to_numpy_image(problem.to_image(problem.x0)),
                f"{before['psnr']:.2f} dB / {before['ssim']:.3f}")]
        for (_method, _variant, label), ident in zip(wanted, idents):
            m = json.loads((results / ident / "metrics.json").read_text())
            out.append((label, read_png(results / ident / "recon.png"),
                        f"{m['psnr']:.2f} dB / {m['ssim']:.3f}, {m['iterations']} steps"))
        return out
    return None


def read_png(path: Path) -> np.ndarray:
    """A committed 8-bit PNG as floats in [0, 1], (H, W) or (H, W, C) as stored."""
    from PIL import Image

    return np.asarray(Image.open(path), dtype=np.float64) / 255.0


def write_figure(results: Path = RESULTS) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(f"{t} {s}, {z} px", p) for t, s, z in SETTINGS if (p := panels_for(t, s, z, results)) is not None]
    if not rows:
        return None
    fig, axes = plt.subplots(len(rows), 6, figsize=(15, 2.9 * len(rows)), dpi=110, squeeze=False)
    for (title, panels), line in zip(rows, axes):
        for ax, (name, image, caption) in zip(line, panels):
            ax.imshow(image, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_title(name, fontsize=9)
            ax.set_xlabel(caption, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
        line[0].set_ylabel(title, fontsize=9)
    fig.suptitle("Returned images under the default --stop auto (no ground truth used to choose them); "
                 "PSNR / SSIM against the truth", fontsize=9)
    fig.tight_layout()
    path = results / "figure5.png"
    fig.savefig(path)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--results", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    path = write_figure(args.results)
    print(f"wrote {path}" if path else "no task has all its rows yet")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
