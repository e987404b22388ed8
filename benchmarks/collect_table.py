"""Collect the metrics.json of finished runs into one markdown table.

    .venv/bin/python benchmarks/collect_table.py runs/table-128 [more folders ...]

Reads every ``*/metrics.json`` under each folder, one row per run folder (so two aSeqDIP runs with
different lambda stay apart). PSNR/SSIM are those of the returned image; the measurement's PSNR (noisy,
blurred, zero-filled, ...) and SSIM are beside them. Seconds are this process's: a run resumed from a
checkpoint timed only the steps after it (metrics.json's ``resumed_from_iteration``), and s/it divides
by those steps. The best PSNR along the run needs the ground truth: it is
shown in its own column, labelled as an oracle. Seconds per iteration are only comparable between runs
with the same thread count on an otherwise idle machine.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HEADER = ("| run | method | image | measurement PSNR / SSIM | PSNR (dB) | SSIM | seconds | s/it | threads | steps run "
          "| iterate returned | oracle best PSNR (@ step) |")


def row(folder: Path, m: dict[str, Any]) -> str:
    """One markdown row for the run in ``folder`` with metrics ``m``."""
    env = m.get("environment", {})
    best = m.get("psnr_oracle_best")
    oracle = "" if best is None else f"{best:.2f} (@ {m.get('iteration_oracle_best')})"
    image = Path(str(m.get("image", ""))).name
    return (f"| {folder.name} | {m['method']} | {image} | {m.get('psnr_measurement', float('nan')):.2f} / "
            f"{m.get('ssim_measurement', float('nan')):.3f} "
            f"| {m['psnr']:.2f} | {m['ssim']:.3f} | {m['seconds']:.0f} | {m['seconds_per_iteration']:.3f} "
            f"| {env.get('torch_threads', '?')} | {m['iterations']} | {m['iteration_returned']} | {oracle} |")


def main(folders: list[str]) -> None:
    paths = sorted(p for folder in folders for p in Path(folder).glob("*/metrics.json"))
    if not paths:
        sys.exit(f"no */metrics.json under {' '.join(folders)}")
    print(HEADER)
    print("|" + "---|" * (HEADER.count("|") - 1))
    for path in paths:
        print(row(path.parent, json.loads(path.read_text())))


if __name__ == "__main__":
    main(sys.argv[1:] or ["runs/table-128"])
