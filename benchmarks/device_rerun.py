"""Rerun committed study rows on another device and set them beside the committed (CPU) results.

    PYTHONPATH=src python benchmarks/device_rerun.py --device cuda --out DIR IDENT [IDENT ...]

Each IDENT names a row of ``benchmarks/auto_study.py`` whose ``metrics.json`` is committed under
``benchmarks/results/auto-study/IDENT``. The row's own command (same image, options, seed, ceiling and
rule) runs again with ``--device`` added, in a subprocess, and ``DIR/device-rerun.json`` and
``DIR/device-rerun.md`` record, per row, the committed and the new run's steps, seconds, returned PSNR
and the oracle best (labelled: found with the ground truth). Why: the study was sized for a 2-core CPU;
this shows what the same commands cost on a GPU and whether they return the same image there (DIP
training amplifies rounding, so the same seed on other hardware is a different trajectory).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks import auto_study  # noqa: E402

FIELDS = ("iterations", "seconds", "psnr", "ssim", "psnr_oracle_best", "iteration_oracle_best", "output_rule")


def rerun(row: auto_study.Row, device: str, where: Path, timeout: float) -> dict[str, Any]:
    """Run the row's recorded command on ``device``; the new metrics, or the failure."""
    out = where / row.ident
    argv = row.command(out)
    argv = [sys.executable, "-m", "aseqdip.cli", *argv[1:], "--device", device]
    started = time.perf_counter()
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    wall = time.perf_counter() - started
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or ["(no message)"]
        return {"error": lines[-1], "stderr_tail": lines[-30:], "wall_seconds": wall}
    metrics = json.loads((out / "metrics.json").read_text())
    return {**{k: metrics.get(k) for k in FIELDS}, "precision": metrics.get("precision"),
            "device": metrics.get("device"), "wall_seconds": wall}


def table(result: dict[str, Any]) -> str:
    lines = [f"# Study rows rerun on {result['device_name']}", "",
             f"torch {result['torch']}, {result['date']}. Committed: the study's CPU run "
             "(benchmarks/results/auto-study/IDENT/metrics.json). PSNR is the returned image's; the oracle "
             "best is found with the ground truth (no user has it).", "",
             "| row | committed steps | s | PSNR | rerun steps | s | PSNR | rerun oracle best (@step) | speed-up |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for ident, r in result["rows"].items():
        c, g = r["committed"], r["device"]
        if "error" in g:
            lines.append(f"| {ident} | {c['iterations']} | {c['seconds']:.0f} | {c['psnr']:.2f} | failed: {g['error']} |||||")
            continue
        lines.append(f"| {ident} | {c['iterations']} | {c['seconds']:.0f} | {c['psnr']:.2f} | {g['iterations']} | "
                     f"{g['seconds']:.1f} | {g['psnr']:.2f} | {g['psnr_oracle_best']:.2f} (@{g['iteration_oracle_best']}) | "
                     f"{c['seconds'] / g['seconds']:.0f}x |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("idents", nargs="+")
    p.add_argument("--device", default="cuda")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per row")
    args = p.parse_args()
    rows = {r.ident: r for r in auto_study.plan()}
    unknown = [i for i in args.idents if i not in rows or not auto_study.done(rows[i], auto_study.RESULTS)]
    if unknown:
        p.error(f"not committed study rows: {unknown}")
    args.out.mkdir(parents=True, exist_ok=True)
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") and torch.cuda.is_available() else args.device
    result: dict[str, Any] = {"device_name": name, "torch": torch.__version__,
                              "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "rows": {}}
    for ident in args.idents:
        committed = json.loads((auto_study.RESULTS / ident / "metrics.json").read_text())
        new = rerun(rows[ident], args.device, args.out / "runs", args.timeout)
        result["rows"][ident] = {"committed": {k: committed.get(k) for k in FIELDS}, "device": new}
        print(ident, json.dumps(new), flush=True)
        (args.out / "device-rerun.json").write_text(json.dumps(result, indent=1) + "\n")
        (args.out / "device-rerun.md").write_text(table(result))


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "4")
    main()
