"""The ``auto`` default on images the study never saw (issue 18: "the default will also be checked on
images and slices the study never saw, so choose it for robustness").

    .venv/bin/python -m benchmarks.auto_holdout plan                   # the rows and their estimated minutes
    .venv/bin/python -m benchmarks.auto_holdout run --jobs 2 --commit  # work through them (resumable)
    .venv/bin/python -m benchmarks.auto_holdout status

The same rows as ``benchmarks/auto_study.py`` (its commands, queue, locks and checkpoints), aSeqDIP only,
the paper's main setting of each task at 64 px, on images that no choice of ``auto`` was made on: neither
the study's three per group nor the tuning images (rocket, immunohistochemistry, CT_small, MR_small,
eCT_Supplemental). The rows land in ``benchmarks/results/auto-holdout/`` with their own TABLE.md
(``auto_table`` on that folder: the criteria per task, every observed rule, the noise estimate).

No CT line: every CT slice that pydicom and pydicom-data ship and that decodes without a JPEG plugin is a
study or tuning slice (``bad_sequence.dcm``, a neck CT, is JPEG Lossless and needs pylibjpeg or GDCM).
"""

from __future__ import annotations

import argparse
import sys
import time

from benchmarks.auto_study import RESULTS, RUNS, SETTINGS, Row, run_workers, status, work
from benchmarks.paper_data import builtin_items

HOLDOUT_RESULTS = RESULTS.parent / "auto-holdout"
HOLDOUT_RUNS = RUNS.parent / "auto-holdout"
# per group, the images held out (never in the study, never tuned on)
IMAGES = {"natural": ("motorcycle_left", "hubble_deep_field", "retina"), "mri": ("emri_small",)}
# (task, setting): the paper's main setting per task; noisy k-space for MRI, where auto has a level to reach
LINES = [("denoise", "sigma25"), ("inpaint", "hiar0.25"), ("deblur", "noise0.05"), ("mri", "4x-sigma5")]
GROUP = {"denoise": "natural", "inpaint": "natural", "deblur": "natural", "mri": "mri"}
SIZE = 64


def plan(images_per_group: int = 1) -> list[Row]:
    """aSeqDIP's paper and auto rows, image by image: each line's paper row, then its auto row."""
    settings = {(task, setting): (options, network) for task, setting, options, network, _ in SETTINGS}
    items = {group: {item.ident: item for item in builtin_items(group, RUNS / "_data")} for group in IMAGES}
    rows = []
    for index in range(images_per_group):
        for task, setting in LINES:
            names = IMAGES[GROUP[task]]
            if index >= len(names):
                continue
            item = items[GROUP[task]][names[index]]
            options, network = settings[(task, setting)]
            for kind in ("paper", "auto"):
                rows.append(Row(task, setting, tuple(options), item.ident, item.spec, SIZE, "aseqdip", kind, network))
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="auto_holdout", description=__doc__.split("\n")[0])
    p.add_argument("action", choices=("plan", "run", "status"))
    p.add_argument("--images", type=int, default=1, help="held-out images per group (natural: up to 3)")
    p.add_argument("--jobs", type=int, default=2, help="runs at a time (one torch thread each)")
    p.add_argument("--commit", action="store_true", help="commit each finished row")
    p.add_argument("--hours", type=float, default=None, help="take no new row after this many hours")
    args = p.parse_args(argv)
    rows = plan(args.images)
    if args.action == "plan":
        for r in rows:
            print(f"{r.ident:70s} ~{r.estimated_seconds() / 60:5.1f} min (constants of the AMD EPYC)")
    elif args.action == "run" and args.jobs > 1:
        run_workers("benchmarks.auto_holdout", args.jobs,
                    ["--images", str(args.images), *(["--commit"] if args.commit else []),
                     *(["--hours", str(args.hours)] if args.hours else [])])
    elif args.action == "run":
        deadline = None if args.hours is None else time.time() + args.hours * 3600
        work(rows, HOLDOUT_RUNS, HOLDOUT_RESULTS, args.commit, deadline)
    print(status(rows, HOLDOUT_RUNS, HOLDOUT_RESULTS).split(" (about")[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
