"""Evaluate stopping rules afterwards on recorded runs (issue 18): one run to the ceiling, every rule.

    .venv/bin/python -m benchmarks.auto_rules RUN_OR_METRICS [...] [--tau 1,0.9,0.8] [--markdown]

Each argument is a run folder (or its metrics.json) recorded with ``--observe residual --track-every 1``:
the per-step residual r_t (mean |A x_t - y|^2 over measured entries) and oracle PSNR curves. For the
noise level the run recorded (``noise.sigma``, estimated from y unless given) and each tau, the
discrepancy principle stops at the first step where r_t <= tau sigma^2 after r_t has been above it;
it is scored by the PSNR there. The oracle best is shown, labelled, for comparison only: no rule sees it.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any


def load(path: str) -> dict[str, Any]:
    p = Path(path)
    return json.loads((p / "metrics.json" if p.is_dir() else p).read_text())


def discrepancy_stop(residual: list[float], steps: list[int], level: float) -> int | None:
    """The discrepancy principle on a recorded curve: first step, once above ``level``, at or below it."""
    armed = False
    for step, value in zip(steps, residual):
        if value > level:
            armed = True
        elif armed:
            return step
    return None


def psnr_at(metrics: dict[str, Any], step: int) -> float:
    h = metrics["history"]
    table = dict(zip(h["psnr_iteration"], h["psnr"]))
    return table.get(step, math.nan)


def first_above(metrics: dict[str, Any], base: float) -> int | None:
    """The first step whose PSNR is above ``base`` (the first estimate's): how long the climb back takes."""
    h = metrics["history"]
    # by more than the curves' rounding (5 digits): aSeqDIP's first estimates are z_0 itself
    return next((i for i, v in zip(h["psnr_iteration"], h["psnr"]) if v > base + 0.01), None)


def evaluate(metrics: dict[str, Any], taus: list[float]) -> dict[str, Any]:
    h = metrics["history"]
    sigma = metrics["noise"]["sigma"]
    ceiling = h["residual_iteration"][-1]
    fixed = metrics["psnr"] if metrics.get("iteration_returned") == ceiling else psnr_at(metrics, ceiling)
    out: dict[str, Any] = {"fixed": fixed,
                           "oracle": (metrics["psnr_oracle_best"], metrics["iteration_oracle_best"]),
                           "base": metrics.get("psnr_measurement"), "sigma": sigma, "ceiling": ceiling}
    out["climb"] = first_above(metrics, out["base"]) if out["base"] is not None else None
    for tau in taus:
        step = discrepancy_stop(h["residual"], h["residual_iteration"], tau * sigma**2)
        out[f"tau{tau:g}"] = (psnr_at(metrics, step), step) if step else (out["fixed"], None)
    return out


def run_name(path: Path) -> str:
    """A run folder's name, a study row's folder (for its metrics.json), or a saved curve file's stem."""
    if path.is_dir():
        return path.name
    return path.parent.name if path.name == "metrics.json" else path.stem


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--tau", default="1,0.9,0.8,0.7")
    args = parser.parse_args()
    taus = [float(t) for t in args.tau.split(",")]
    head = ["run", "sigma*255", "first est.", "climb@", "fixed", "oracle best (@)"] + [f"disc tau {t:g} (@)" for t in taus]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for run in args.runs:
        m = load(run)
        if "residual" not in m.get("history", {}):
            continue
        e = evaluate(m, taus)
        cells = [run_name(Path(run)), f"{e['sigma'] * 255:.2f}",
                 f"{e['base']:.2f}" if e["base"] is not None else "-", str(e["climb"]), f"{e['fixed']:.2f}",
                 f"{e['oracle'][0]:.2f} ({e['oracle'][1]})"]
        cells += [f"{e[f'tau{t:g}'][0]:.2f} ({e[f'tau{t:g}'][1] or 'ceiling'})" for t in taus]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
