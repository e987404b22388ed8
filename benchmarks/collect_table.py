"""Collect the metrics.json of several runs into one markdown table (method, PSNR, SSIM, seconds).

    .venv/bin/python benchmarks/collect_table.py runs/table-128

Reads every ``*/metrics.json`` under the folder. PSNR/SSIM are those of the returned image; the
oracle best PSNR along the run (it needs the ground truth) is shown separately and labelled so.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(folder: str) -> None:
    rows = []
    for path in sorted(Path(folder).glob("*/metrics.json")):
        m = json.loads(path.read_text())
        rows.append((m["method"], m.get("psnr"), m.get("ssim"), m["seconds"], m["iterations"], m["iteration_returned"],
                     m.get("psnr_oracle_best"), m["environment"]["machine"], m.get("device")))
    if not rows:
        sys.exit(f"no */metrics.json under {folder}")
    print("| method | PSNR (dB) | SSIM | seconds | steps run | iterate returned | oracle best PSNR | device |")
    print("|---|---|---|---|---|---|---|---|")
    for method, psnr, ssim, sec, its, ret, best, machine, device in rows:
        print(f"| {method} | {psnr:.2f} | {ssim:.3f} | {sec:.0f} | {its} | {ret} | "
              f"{'' if best is None else f'{best:.2f}'} | {device} ({machine}) |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/table-128")
