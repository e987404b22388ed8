"""aSeqDIP as written, as its authors run it, and Vanilla DIP at the paper's sizes, on a lent GPU (issue 37).

    PYTHONPATH=src python benchmarks/device_recipe.py --device cuda --out DIR [--seconds 540]
    PYTHONPATH=src python benchmarks/device_recipe.py --device cpu --out DIR --small   # the same rows at 48 px

The 2-core CPU this project runs on cannot reach the paper's sizes (a 320x320 medium U-Net step takes
seconds there, ~8 ms on an H200: benchmarks/results/device-h200/speed-paper-h200.json). This script runs a
subset of the recipe study there, one ``aseqdip run`` per row in a subprocess, most telling rows first:

* MRI 4x, noise-free, 320x320, 15 simulated coils, from a real MR slice (pydicom-data's MR2_UNCR);
* box inpainting, HIAR 0.25, 256x256 photograph (scikit-image's astronaut);
* denoising, sigma 25, 256x256 (astronaut).

Per setting, under ``--stop auto`` (what a user gets): aSeqDIP's default (this library's choice per task:
the library recipe on box inpainting and MRI, the paper's on denoising), Vanilla DIP and aSeqDIP as written
(``--recipe paper``); then fixed budgets with the discrepancy rule observed (one run gives the fixed-budget
image, the oracle best along the run and the step the default rule would stop at): the paper's recipe,
Vanilla DIP and, where a task has one, the authors' (``--recipe authors``). ``DIR/device-recipe.json``
and ``.md`` are rewritten after every row, so a run cut short keeps what finished; a row that would not
fit in what is left of ``--seconds`` is skipped and said so. Returned PSNR is the image each run returns;
the oracle best needs the ground truth and is labelled so.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from aseqdip.recipes import recipe_settings  # noqa: E402
from benchmarks.paper_data import builtin_items  # noqa: E402

FIELDS = ("iterations", "seconds", "psnr", "ssim", "psnr_oracle_best", "iteration_oracle_best", "output_rule",
          "psnr_measurement", "precision", "device", "recipe")
FIXED = ["--stop", "none", "--observe", "discrepancy,residual", "--sigma-from", "estimate"]
AUTO = ["--stop", "auto"]
# what a row is expected to take on an H100/H200, for skipping rows that cannot finish (seconds)
EXPECTED = {"mri": 60.0, "inpaint": 60.0, "denoise": 30.0}


def settings(small: bool) -> list[tuple[str, list[str]]]:
    """(name, task options) of the three settings, at the paper's sizes or at 48 px (``small``)."""
    mri = builtin_items("mri", Path("/tmp/aseqdip-device-data"))[0].spec
    size = lambda full: ["--size", "48" if small else str(full)]  # noqa: E731
    return [("mri-4x", ["--task", "mri", "--image", mri, "--acceleration", "4", *size(320)]),
            ("inpaint-hiar0.25", ["--task", "inpaint", "--image", "skimage:astronaut", "--hiar", "0.25", *size(256)]),
            ("denoise-sigma25", ["--task", "denoise", "--image", "skimage:astronaut", "--sigma", "25", *size(256)])]


def rows(small: bool) -> list[tuple[str, list[str]]]:
    """Every row in the order it runs, most telling first: per setting, under ``auto`` the library's default
    (no ``--recipe``), Vanilla DIP and the paper's recipe; then the fixed budgets (with the default rule observed)
    of the paper's recipe, Vanilla DIP and the authors' recipe where the task has one."""
    out = []
    for name, task in settings(small):
        budget = ["--iterations", "40"] if small else []
        authors = bool(recipe_settings("authors", task[1], "aseqdip"))  # denoising's script is the paper's recipe
        aseqdip = [*task, "--method", "aseqdip"]
        out += [(f"{name}-aseqdip-default-auto", [*aseqdip, *budget, *AUTO]),
                (f"{name}-dip-auto", [*task, "--method", "dip", *budget, *AUTO]),
                (f"{name}-aseqdip-paper-auto", [*aseqdip, "--recipe", "paper", *budget, *AUTO]),
                (f"{name}-aseqdip-paper-fixed", [*aseqdip, "--recipe", "paper", *budget, *FIXED]),
                (f"{name}-dip-fixed", [*task, "--method", "dip", *budget, *FIXED])]
        out += [(f"{name}-aseqdip-authors-fixed", [*aseqdip, "--recipe", "authors", *budget, *FIXED])] if authors else []
    return out


def run_row(name: str, options: list[str], device: str, where: Path, timeout: float) -> dict[str, Any]:
    out = where / name
    argv = [sys.executable, "-m", "aseqdip.cli", "run", *options, "--seed", "0", "--track-every", "1",
            "--device", device, "--no-progress", "--out", str(out)]
    started = time.perf_counter()
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s", "command": " ".join(argv[3:])}
    wall = time.perf_counter() - started
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or ["(no message)"]
        return {"error": lines[-1], "stderr_tail": lines[-30:], "wall_seconds": wall}
    metrics = json.loads((out / "metrics.json").read_text())
    observed = metrics.get("observed", {}).get("discrepancy", {})
    return {**{k: metrics.get(k) for k in FIELDS}, "wall_seconds": round(wall, 1),
            "discrepancy_observed": {k: observed.get(k) for k in ("steps", "psnr")} if observed else None,
            "command": "aseqdip " + " ".join(argv[3:])}


def table(result: dict[str, Any]) -> str:
    lines = [f"# aSeqDIP recipes at the paper's sizes on {result['device_name']}", "",
             f"torch {result['torch']}, {result['date']}. PSNR: the returned image's. The oracle best is found "
             "with the ground truth (no user has it). For fixed runs, 'discrepancy' is the step and PSNR where the "
             "default rule (discrepancy principle, estimated noise level) would have stopped the same run.", "",
             "| row | steps | s | returned PSNR | oracle best (@step) | discrepancy @step: PSNR | first estimate |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, r in result["rows"].items():
        if "error" in r:
            lines.append(f"| {name} | {r['error']} | | | | | |")
            continue
        seen = r.get("discrepancy_observed") or {}
        disc = f"{seen['steps']}: {seen['psnr']:.2f}" if seen.get("steps") else ""
        lines.append(f"| {name} | {r['iterations']} | {r['seconds']:.1f} | {r['psnr']:.2f} | "
                     f"{r['psnr_oracle_best']:.2f} (@{r['iteration_oracle_best']}) | {disc} | {r['psnr_measurement']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seconds", type=float, default=540.0, help="stop taking rows after this long (default 9 min)")
    p.add_argument("--small", action="store_true", help="48 px and 40 steps: check the script on a CPU")
    args = p.parse_args(argv)
    import torch

    deadline = time.perf_counter() + args.seconds
    name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") and torch.cuda.is_available() else "CPU"
    result: dict[str, Any] = {"device_name": name, "torch": torch.__version__,
                              "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "rows": {}}
    args.out.mkdir(parents=True, exist_ok=True)
    for row, options in rows(args.small):
        left = deadline - time.perf_counter()
        expected = 10.0 if args.small else EXPECTED[options[1]]
        if left < expected:
            result["rows"][row] = {"error": f"skipped: {left:.0f} s left of --seconds, ~{expected:.0f} s needed"}
        else:
            result["rows"][row] = run_row(row, options, args.device, args.out / "runs", timeout=left)
        (args.out / "device-recipe.json").write_text(json.dumps(result, indent=1))
        (args.out / "device-recipe.md").write_text(table(result))
        print(row, result["rows"][row].get("psnr", result["rows"][row].get("error")), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
