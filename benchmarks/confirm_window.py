"""The discrepancy principle with and without its confirmation window, afterwards, on committed fixed-budget rows.

    .venv/bin/python -m benchmarks.confirm_window [--write]

Every fixed-budget row of ``benchmarks/results/auto-study`` recorded its residual curve and oracle PSNR curve
along all its steps (``--observe residual --track-every 1``) and the noise level estimated for it. For each,
the plain rule (stop where the residual first reaches sigma^2) and the rule with the window
(:class:`aseqdip.engine.stopping.Discrepancy` with ``confirm=1``: as many steps again; below half the level
inside the window means noise-free, to the budget and the smallest residual) are replayed on those curves.
This decided where ``auto`` confirms its level (``aseqdip.auto.CONFIRM_WITH_DC_INPUT``): the oracle PSNR is
read off the curves only to score the rules, never to choose.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path

from benchmarks.auto_rules import discrepancy_stop, psnr_at

ROOT = Path(__file__).resolve().parents[1]
ROWS = ROOT / "benchmarks" / "results" / "auto-study"
OUT = ROOT / "benchmarks" / "results" / "confirm-window" / "TABLE.md"


def confirmed_stop(metrics: dict, confirm: float = 1.0, below: float = 0.5) -> tuple[int, int, str]:
    """(the step whose image the rule with the window returns, the steps it runs, why), replayed on the recorded
    residual curve."""
    h, budget = metrics["history"], metrics["iterations"]
    steps, residual, level = h["residual_iteration"], h["residual"], metrics["noise"]["sigma"] ** 2
    reached = discrepancy_stop(residual, steps, level)
    if reached is None:
        return min(zip(residual, steps))[1], budget, "never reached: smallest residual"
    for step, value in zip(steps, residual):
        if reached < step <= reached * (1 + confirm) and value <= below * level:
            return (min((v, s) for s, v in zip(steps, residual) if s >= step)[1], budget,
                    "noise-free: smallest residual")
    return reached, min(budget, int(reached * (1 + confirm))), "confirmed"


def row(path: Path) -> dict | None:
    m = json.loads(path.read_text())
    h = m.get("history", {})
    if "residual" not in h or not (m.get("noise") or {}).get("sigma") or m["stop_reason"]:
        return None  # an auto row (it stopped), or one without the curves
    level = m["noise"]["sigma"] ** 2
    reached = discrepancy_stop(h["residual"], h["residual_iteration"], level)
    plain = reached or min(zip(h["residual"], h["residual_iteration"]))[1]  # never reached: the smallest residual
    window, window_steps, why = confirmed_stop(m)
    setting = ", ".join(f"{k} {v:g}" for k, v in m["task_settings"].items() if k in LINE_KEYS and v is not None)
    return {"line": f"{m['task']} ({setting})", "method": m["method"], "image": m.get("image", ""),
            "plain": psnr_at(m, plain), "plain_steps": reached or m["iterations"],
            "window": psnr_at(m, window), "window_steps": window_steps, "why": why, "best": max(h["psnr"])}


LINE_KEYS = ("views", "photons", "noise", "sigma", "hiar", "missing", "acceleration")  # what names a study line


def table(rows: list[dict]) -> str:
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in rows:
        groups[(r["line"], r["method"])].append(r)
    lines = ["| line | method | n | plain: PSNR (median steps) | with the window | windows that said noise-free | "
             "oracle best |", "|---|---|---|---|---|---|---|"]
    for (line, method), rs in sorted(groups.items()):
        mean = {k: statistics.mean(r[k] for r in rs) for k in ("plain", "window", "best")}
        steps = {k: statistics.median(r[k] for r in rs) for k in ("plain_steps", "window_steps")}
        free = sum(r["why"].startswith("noise-free") for r in rs)
        lines.append(f"| {line} | {method} | {len(rs)} | {mean['plain']:.2f} ({steps['plain_steps']:.0f}) | "
                     f"{mean['window']:.2f} ({steps['window_steps']:.0f}) | {free} of {len(rs)} | {mean['best']:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help=f"write the table to {OUT.relative_to(ROOT)}")
    args = parser.parse_args()
    rows = [r for p in sorted(ROWS.glob("*/metrics.json")) if (r := row(p)) is not None]
    text = ("# The discrepancy principle's confirmation window, replayed on the auto study's fixed-budget rows\n\n"
            "Written by `python -m benchmarks.confirm_window --write`. PSNR in dB, means over the rows' images; the "
            "oracle best is read off the curves (no rule sees it). The window: after the residual reaches sigma^2, "
            "as many steps again; below half of sigma^2 inside it, the data are taken as noise-free (to the budget, "
            "the smallest residual).\n\n" + table(rows) + "\n")
    if args.write:
        OUT.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
