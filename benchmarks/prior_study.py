"""Issue 34's study of learned starts: a prior fitted on some images of a kind, evaluated on others.

    .venv/bin/python -m benchmarks.prior_study run [--only denoise] [--jobs 1]   # resumable: finished rows are kept
    .venv/bin/python -m benchmarks.prior_study table                             # TABLE.md from the finished rows

Per line (task, setting, method): ``aseqdip prior fit`` on the FIT images (files written once from the
packages' images; never evaluated on), then ``aseqdip run`` under ``--stop auto`` on each EVAL image twice:
from random weights and with ``--init PRIOR``. The table gives steps to auto's stop and the returned PSNR,
random against prior, and the prior's fitting cost in steps and seconds with the number of studies after
which it has paid for itself. Every command is recorded in the rows' metrics.json / prior.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "prior-study"
RUNS = Path("/work/runs/prior-study") if Path("/work").is_dir() else ROOT / "runs" / "prior-study"
SIZE = 64
CEILING = 4000
# scikit-image's colour photographs: the auto study's three for evaluation, the others to fit on
EVAL = ("astronaut", "chelsea", "coffee")
FIT = ("rocket", "immunohistochemistry", "motorcycle_left", "hubble_deep_field")


@dataclass(frozen=True)
class Line:
    task: str
    setting: str
    options: tuple[str, ...]
    method: str

    @property
    def ident(self) -> str:
        return f"{self.task}-{self.setting}-{SIZE}px-{self.method}"


LINES = [
    Line("denoise", "sigma25", ("--sigma", "25"), "aseqdip"),
    Line("denoise", "sigma25", ("--sigma", "25"), "dip"),
    Line("inpaint", "hiar0.25", ("--hiar", "0.25"), "aseqdip"),
    Line("deblur", "noise0.05", ("--noise", "0.05"), "aseqdip"),
]


def aseqdip(*args: str) -> list[str]:
    return [str(ROOT / ".venv" / "bin" / "aseqdip"), *args]


def fit_folder(cache: Path) -> Path:
    """The FIT images as PNG files (a prior is fitted on a folder)."""
    import skimage.data

    from aseqdip.io.outputs import write_png
    from benchmarks.paper_data import motorcycle_png

    folder = cache / "fit"
    folder.mkdir(parents=True, exist_ok=True)
    for name in FIT:
        target = folder / f"{name}.png"
        if not target.exists():
            image = (skimage.data.stereo_motorcycle()[0] if name == "motorcycle_left"
                     else getattr(skimage.data, name)()) / 255.0
            write_png(target, image)
    motorcycle_png(cache)  # (kept beside, for paper_data)
    return folder


def starts(line: Line) -> tuple[str, ...]:
    """Random weights, the prior, and for aSeqDIP the prior with auto's 100-step ramp that a fitted start drops
    (auto gives none to a fitted start, as to a volume's warm slices: measured here again)."""
    return ("random", "prior", "prior-ramp") if line.method == "aseqdip" else ("random", "prior")


def run_line(line: Line, runs: Path, results: Path) -> None:
    common = ["--task", line.task, *line.options, "--method", line.method, "--size", str(SIZE), "--seed", "0",
              "--precision", "fp32", "--no-progress"]
    prior = runs / line.ident / "prior"
    if not (prior / "prior.json").exists():
        subprocess.run(aseqdip("prior", "fit", "--input", str(fit_folder(runs / "_data")), *common,
                               "--resume", "--out", str(prior)), check=True)
    target = results / line.ident
    target.mkdir(parents=True, exist_ok=True)
    record = json.loads((prior / "prior.json").read_text())
    (target / "prior.json").write_text(json.dumps({k: v for k, v in record.items() if k != "inner_final_loss"}, indent=1))
    for image in EVAL:
        for start in starts(line):
            out = runs / line.ident / f"{image}-{start}"
            if not (out / "metrics.json").exists():
                init = {"random": [], "prior": ["--init", str(prior)],
                        "prior-ramp": ["--init", str(prior), "--ramp", "100"]}[start]
                subprocess.run(aseqdip("run", "--image", f"skimage:{image}", *common, "--iterations", str(CEILING),
                                       "--stop", "auto", *init, "--overwrite", "--out", str(out)), check=True)
            m = json.loads((out / "metrics.json").read_text())
            keep = {k: m[k] for k in ("psnr", "ssim", "iterations", "iteration_returned", "psnr_oracle_best",
                                      "iteration_oracle_best", "seconds", "hyperparameters") if k in m}
            keep["command"] = m.get("environment", {}).get("command")
            keep["machine"] = m.get("environment", {}).get("machine")
            (target / f"{image}-{start}.json").write_text(json.dumps(keep, indent=1))


def table(results: Path) -> str:
    lines = ["| line | random: mean PSNR, median steps | prior: mean PSNR, median steps | steps ratio | "
             "prior + ramp: mean PSNR, median steps | fit: steps, seconds | pays back after |",
             "|---|---|---|---|---|---|---|"]
    for line in LINES:
        folder = results / line.ident
        rows = {s: [json.loads((folder / f"{i}-{s}.json").read_text()) for i in EVAL
                    if (folder / f"{i}-{s}.json").exists()] for s in starts(line)}
        if not rows["random"] or len(rows["random"]) != len(rows["prior"]):
            continue
        prior = json.loads((folder / "prior.json").read_text())
        psnr = {s: statistics.mean(r["psnr"] for r in rows[s]) for s in rows if rows[s]}
        steps = {s: statistics.median(r["iterations"] for r in rows[s]) for s in rows if rows[s]}
        ramp = f"{psnr['prior-ramp']:.2f}, {steps['prior-ramp']:.0f}" if "prior-ramp" in psnr else ""
        fit_steps = prior["meta"]["total_steps"]
        saved = steps["random"] - steps["prior"]
        # it pays only if it returns as well (issue 34: within 0.3 dB of random weights' mean)
        if psnr["prior"] < psnr["random"] - 0.3:
            payback = f"never ({psnr['prior'] - psnr['random']:+.2f} dB)"
        else:
            payback = f"{fit_steps / saved:.1f} studies" if saved > 0 else "never (no steps saved)"
        lines.append(f"| {line.ident} | {psnr['random']:.2f}, {steps['random']:.0f} | {psnr['prior']:.2f}, "
                     f"{steps['prior']:.0f} | {steps['prior'] / steps['random']:.2f} | {ramp} | {fit_steps}, "
                     f"{prior['meta']['seconds']:.0f} | {payback} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("action", choices=("run", "table"))
    p.add_argument("--only", default=None, help="comma-separated substrings of the lines to run")
    p.add_argument("--runs", type=Path, default=RUNS)
    p.add_argument("--results", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if args.action == "run":
        for line in LINES:
            if args.only and not any(k in line.ident for k in args.only.split(",")):
                continue
            run_line(line, args.runs, args.results)
            (args.results / "TABLE.md").write_text(table(args.results))
    print(table(args.results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
