"""The auto study's table (issue 18), our analogue of the paper's Table 2, from the rows committed so far.

    .venv/bin/python -m benchmarks.auto_table                 # print the summary and the per-image table
    .venv/bin/python -m benchmarks.auto_table --write         # also rewrite results/auto-study/TABLE.md
    .venv/bin/python -m benchmarks.auto_table --readme        # also rewrite the README's table block

Per task, setting and size (mean over the images done so far, ``n``), for aSeqDIP and Vanilla DIP:

* **auto** (the default, ``--stop auto``): the returned image's PSNR/SSIM, its steps and seconds. aSeqDIP's
  comes from its own ``auto`` row (the ramp changes its trajectory); Vanilla DIP's is read off its
  ``paper`` row's discrepancy observer (the same rule on the same run, see ``auto_study.derived``), so its
  seconds are steps x that run's seconds per step, marked ``~``.
* **fixed**: the paper's 4000-step budget (``--stop none``), the image at the last step.
* **oracle best (@ step)**: the best PSNR along the 4000 steps, found with the ground truth; no user has
  it. Labelled so wherever it is shown.
* **reference**: the classical first estimate the task gives for free (noisy, masked or blurred image,
  zero-filled MRI, FBP).
* **paper**: Table 2 of the paper (aSeqDIP / Vanilla DIP), another data set (CBSD68, fastMRI, AAPM) at
  256 px on a GPU, for scale only; blank where Table 2 has no such setting.

Below it, the criteria of issue 18 over the lines where aSeqDIP's auto and paper rows are both done.
Seconds: runs shared the two cores with another run, and ``paper`` rows also paid for their observers,
so compare steps; seconds are what each run took.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from benchmarks.auto_noise import noise_lines
from benchmarks.auto_rules import first_above
from benchmarks.auto_study import CEILING, RESULTS, ROOT, SETTINGS
from benchmarks.paper_numbers import paper_value

TABLE = RESULTS / "TABLE.md"
README = ROOT / "README.md"
BEGIN, END = "<!-- auto-study table: begin -->", "<!-- auto-study table: end -->"
# our settings -> (Table 2 setting index, label when the paper's setting differs from ours)
PAPER_SETTING = {("mri", "4x"): (0, ""), ("mri", "8x"): (1, ""), ("ct", "18views"): (0, ""),
                 ("ct", "30views"): (1, ""), ("denoise", "sigma15"): (0, ""), ("denoise", "sigma25"): (1, "sigma 30"),
                 ("inpaint", "hiar0.1"): (0, ""), ("inpaint", "hiar0.25"): (1, ""), ("deblur", "noise0.05"): (0, "")}


def load_rows(results: Path = RESULTS) -> dict[tuple, dict[str, Any]]:
    """Committed rows by (task, setting, size, image, method, kind)."""
    rows = {}
    for path in sorted(results.glob("*/metrics.json")):
        m = json.loads(path.read_text())
        r = m["study_row"]
        rows[(r["task"], r["setting"], r["size"], r["image"], r["method"], r["kind"])] = m
    return rows


def outcome(rows: dict[tuple, dict[str, Any]], key: tuple, method: str) -> dict[str, Any] | None:
    """One method's auto, fixed and oracle figures on one image, or None while a needed row is missing."""
    paper = rows.get((*key, method, "paper"))
    if paper is None:
        return None
    out = {"reference": paper["psnr_measurement"], "reference_is": paper["measurement_is"],
           "fixed": (paper["psnr"], paper["ssim"], paper["seconds"]),
           "oracle": (paper["psnr_oracle_best"], paper["iteration_oracle_best"])}
    if method == "dip":
        if taken_as_noise_free(paper):
            step, psnr = smallest_residual(paper)
            out["auto"] = (psnr, None, paper["iterations"], paper["seconds"], True)
        else:
            seen = paper["observed"]["discrepancy"]
            out["auto"] = (seen["psnr"], seen["ssim"], seen["steps"], seen["steps"] * paper["seconds_per_iteration"],
                           True)
    else:
        auto = rows.get((*key, method, "auto"))
        if auto is None:
            return out
        out["auto"] = (auto["psnr"], auto["ssim"], auto["iterations"], auto["seconds"], False)
        out["climb"] = first_above(auto, auto["psnr_measurement"]) if "psnr" in auto.get("history", {}) else None
        out["own_oracle"] = (auto["psnr_oracle_best"], auto["iteration_oracle_best"])
    return out


def taken_as_noise_free(metrics: dict[str, Any]) -> bool:
    """True for a row whose data auto takes as noise-free (CT without a photon count: ``aseqdip.auto``; the
    acquisition settings that fix the level are ``MeasurementHints.noise_known``'s, recorded in task_settings)."""
    settings = metrics.get("task_settings", {})
    return metrics["task"] == "ct" and not any(settings.get(name) for name in ("photons", "noise_sigma"))


def smallest_residual(metrics: dict[str, Any]) -> tuple[int, float]:
    """(step, PSNR there) of the iterate with the smallest residual along a run recorded with ``--observe
    residual --track-every 1``: what the discrepancy principle at level 0 returns (the first such step)."""
    h = metrics["history"]
    steps = [(r, t) for t, r in zip(h["residual_iteration"], h["residual"]) if t >= 1]
    step = min(steps)[1]
    return step, dict(zip(h["psnr_iteration"], h["psnr"]))[step]


def setting_order() -> list[tuple[str, str]]:
    return [(task, setting) for task, setting, *_ in SETTINGS]


def _auto(o: dict[str, Any] | None) -> str:
    if not o or "auto" not in o:
        return "-"
    psnr, ssim, steps, seconds, derived = o["auto"]
    own = f" (own run's oracle best {o['own_oracle'][0]:.2f} @{o['own_oracle'][1]})" if "own_oracle" in o else ""
    return f"{psnr:.2f} / {_ssim(ssim)}, {steps} steps, {'~' if derived else ''}{seconds:.0f} s{own}"


def _ssim(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def per_image(rows: dict[tuple, dict[str, Any]]) -> list[str]:
    lines = ["| task | setting | px | image | reference | aSeqDIP auto | aSeqDIP fixed (4000) | aSeqDIP oracle best (@) "
             "| DIP auto | DIP fixed (4000) | DIP oracle best (@) |", "|" + "---|" * 11]
    keys = sorted({k[:4] for k in rows}, key=lambda k: (k[2], setting_order().index(k[:2]), k[3]))
    for key in keys:
        a, d = outcome(rows, key, "aseqdip"), outcome(rows, key, "dip")
        ref = a or d
        cells = [key[0], key[1], str(key[2]), key[3],
                 f"{ref['reference']:.2f} ({ref['reference_is']})" if ref else "-"]
        for o in (a, d):
            cells += [_auto(o), f"{o['fixed'][0]:.2f} / {o['fixed'][1]:.3f}, {o['fixed'][2]:.0f} s" if o else "-",
                      f"{o['oracle'][0]:.2f} (@{o['oracle'][1]})" if o else "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def summary(rows: dict[tuple, dict[str, Any]]) -> list[str]:
    """Means over images per (task, setting, size): only images with both methods' paper rows (aSeqDIP's
    alone where the folder holds no Vanilla DIP row of that setting)."""
    groups: dict[tuple, list[tuple]] = defaultdict(list)
    for key in {k[:4] for k in rows}:
        groups[key[:3]].append(key)
    lines = ["| task, setting | px | n | reference | aSeqDIP auto: PSNR / SSIM, steps | aSeqDIP fixed 4000 | "
             "aSeqDIP oracle best | DIP auto: PSNR / SSIM, steps | DIP fixed 4000 | DIP oracle best | "
             "paper Table 2: aSeqDIP / DIP |", "|" + "---|" * 11]
    for group in sorted(groups, key=lambda g: (g[2], setting_order().index(g[:2]))):
        outs = [(outcome(rows, k, "aseqdip"), outcome(rows, k, "dip")) for k in sorted(groups[group])]
        if any(d for _, d in outs):
            outs = [(a, d) for a, d in outs if a and d]
        else:  # a folder of aSeqDIP rows only (benchmarks/auto_holdout.py): no DIP column to fill
            outs = [(a, None) for a, _ in outs if a]
        if not outs:
            continue
        cells = [f"{group[0]}, {group[1]}", str(group[2]), str(len(outs)),
                 f"{_mean([a['reference'] for a, _ in outs]):.2f} ({outs[0][0]['reference_is']})"]
        for which in (0, 1):
            os_ = [pair[which] for pair in outs]
            if None in os_:
                cells += ["-", "-", "-"]
                continue
            autos = [o["auto"] for o in os_ if "auto" in o]
            ssims = [x[1] for x in autos if x[1] is not None]
            if autos:
                mean_ssim = _ssim(_mean(ssims) if len(ssims) == len(autos) else None)
                some = f" (n={len(autos)})" if len(autos) < len(os_) else ""
                cells.append(f"{_mean([x[0] for x in autos]):.2f} / {mean_ssim}, "
                             f"{statistics.median([x[2] for x in autos]):.0f}{some}")
            else:
                cells.append("-")
            cells.append(f"{_mean([o['fixed'][0] for o in os_]):.2f} / {_mean([o['fixed'][1] for o in os_]):.3f}")
            cells.append(f"{_mean([o['oracle'][0] for o in os_]):.2f}")
        index, label = PAPER_SETTING.get(group[:2], (None, ""))
        pa = paper_value(group[0], index, "aseqdip") if index is not None else None
        pd = paper_value(group[0], index, "dip") if index is not None else None
        cells.append("-" if pa is None else f"{pa['psnr']:.2f} / {pd['psnr']:.2f}" if pd else f"{pa['psnr']:.2f} / -")
        if label and pa:
            cells[-1] += f" ({label})"
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def criteria(rows: dict[tuple, dict[str, Any]]) -> list[str]:
    """Issue 18's criteria for aSeqDIP's auto default, over the images where both of its rows are done."""
    got = [o for k in sorted({k[:4] for k in rows}) if (o := outcome(rows, k, "aseqdip")) and "auto" in o]
    if not got:
        return ["No line has both aSeqDIP rows yet."]
    gaps = [o["oracle"][0] - o["auto"][0] for o in got]
    steps = [o["auto"][2] for o in got]
    climbs = [o.get("climb") for o in got]
    late = [c for c in climbs if c is None or c > 100]
    own = [o["own_oracle"][0] - o["auto"][0] for o in got]
    return [f"Over {len(got)} image lines with aSeqDIP's auto and paper rows both done:",
            f"- auto's returned PSNR below the oracle best of the 4000-step run: mean {_mean(gaps):.2f} dB "
            f"(target <= 0.5), worst {max(gaps):.2f} dB (target <= 1.5);",
            f"- (for reading the above) below the oracle best of auto's own run, up to where it stopped: mean "
            f"{_mean(own):.2f} dB, worst {max(own):.2f} dB. The two runs of a line are separate runs, on the CPU "
            f"of the session that made each; on CT they drift apart within tens of steps (docs/auto.md);",
            f"- auto's steps: median {statistics.median(steps):.0f} of {CEILING} "
            f"(target <= {CEILING // 3}), mean {_mean(steps):.0f};",
            f"- the ramp: auto's estimate above its first estimate within 100 steps on "
            f"{len(climbs) - len(late)} of {len(climbs)} lines."]


def criteria_by_task(rows: dict[tuple, dict[str, Any]]) -> list[str]:
    """Issue 18's criteria per task and size: where auto is near its oracle, where it stops early, where it climbs late.

    "climb@": the first step where auto's estimate is above its first estimate (median over the lines;
    "never" when it is not above it within the run). The worst line is named so a reader can open its row.
    """
    groups: dict[tuple, list[tuple[tuple, dict[str, Any]]]] = defaultdict(list)
    for key in sorted({k[:4] for k in rows}):
        o = outcome(rows, key, "aseqdip")
        if o and "auto" in o:
            groups[(key[0], key[2])].append((key, o))
    lines = ["| task | px | lines | below oracle best: mean / worst dB (worst line) | steps: median | "
             "climb within 100 steps | climb@: median |", "|---|---|---|---|---|---|---|"]
    order = [task for task, *_ in SETTINGS]
    for task, size in sorted(groups, key=lambda g: (g[1], order.index(g[0]))):
        got = groups[(task, size)]
        gaps = [o["oracle"][0] - o["auto"][0] for _, o in got]
        worst_key, _ = got[gaps.index(max(gaps))]
        climbs = [o.get("climb") for _, o in got]
        within = sum(1 for c in climbs if c is not None and c <= 100)
        reached = sorted(c for c in climbs if c is not None)
        median = ("never" if not reached else
                  f"{statistics.median(climbs):.0f}" if len(reached) == len(climbs) else
                  f"{statistics.median(reached):.0f} ({len(climbs) - len(reached)} never)")
        lines.append(f"| {task} | {size} | {len(got)} | {_mean(gaps):.2f} / {max(gaps):.2f} "
                     f"({worst_key[1]}, {worst_key[3]}) | {statistics.median(o['auto'][2] for _, o in got):.0f} | "
                     f"{within} of {len(got)} | {median} |")
    return lines


OBSERVED = ("discrepancy", "discrepancy_ema", "wmv")


def observed_rules(rows: dict[tuple, dict[str, Any]]) -> list[str]:
    """What every rule observed on the ``paper`` runs would have returned: how far each rule got.

    Per method and rule, over all ``paper`` rows: the returned PSNR below the run's oracle best (mean,
    worst), above the fixed budget's (mean), and the steps it would have taken (median). No ramp here:
    these are the published algorithms' own trajectories. A rule that never fired runs to the ceiling
    and returns the last image, the fixed budget's.
    """
    lines = ["| method | rule | n | below oracle best: mean / worst dB | above fixed 4000: mean dB | steps: median |",
             "|---|---|---|---|---|---|"]
    for method in ("aseqdip", "dip"):
        papers = [m for k, m in sorted(rows.items()) if k[4] == method and k[5] == "paper"]
        for rule in OBSERVED:
            seen = [(m, m["observed"][rule]) for m in papers if rule in m.get("observed", {})]
            if not seen:
                continue
            returned = [m["psnr"] if o.get("psnr") is None else o["psnr"] for m, o in seen]
            below = [m["psnr_oracle_best"] - r for (m, _), r in zip(seen, returned)]
            above = [r - m["psnr"] for (m, _), r in zip(seen, returned)]
            lines.append(f"| {'aSeqDIP' if method == 'aseqdip' else 'DIP'} | {rule} | {len(seen)} | "
                         f"{_mean(below):.2f} / {max(below):.2f} | {_mean(above):+.2f} | "
                         f"{statistics.median(o['steps'] for _, o in seen):.0f} |")
    return lines


def render(rows: dict[tuple, dict[str, Any]]) -> str:
    return "\n".join(["Means over images (PSNR dB / SSIM; steps: median). Oracle columns need the ground truth.", "",
                      *summary(rows), "", *criteria(rows)])


def replace_block(text: str, block: str) -> str:
    """``text`` with what lies between the README's markers replaced by ``block``."""
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{block}\n{END}{tail}"


def table_text(rows: dict[tuple, dict[str, Any]], name: str = RESULTS.name) -> str:
    """TABLE.md of the rows in the folder ``name``: the summary, the criteria and every image's line."""
    title, where = "Auto study", ""
    if name != RESULTS.name:  # another folder of study rows (benchmarks/auto_holdout.py)
        title, where = f"Auto study, {name}", f" --results {RESULTS.parent.relative_to(ROOT) / name}"
    return "\n".join([f"# {title}: the table so far", "", f"{len(rows)} rows committed; made by "
                      f"`.venv/bin/python -m benchmarks.auto_table --write{where}` (the study rewrites it as each row "
                      "lands). The module's docstring says what each column is.", "", render(rows), "",
                      "## The criteria per task", "",
                      "aSeqDIP's auto against the oracle best of its paper row (the published algorithm's 4000-step run; "
                      "the oracle needs the ground truth).", "",
                      *criteria_by_task(rows), "",
                      "## Every observed rule on the fixed-budget runs", "",
                      "What each rule, watching a `paper` run with the estimated noise level, would have returned "
                      "(no ramp; the oracle best needs the ground truth).", "", *observed_rules(rows), "",
                      "## The noise estimate against the noise drawn", "",
                      "The sigma the rules used, estimated from y, over the noise the simulation drew (an oracle; "
                      "`benchmarks/auto_noise.py`).", "", *noise_lines(rows), "",
                      "## Per image", "", *per_image(rows), ""])


def write_table(results: Path = RESULTS) -> Path:
    """Rewrite ``results``/TABLE.md from the rows in ``results``, atomically (two study workers may both
    write it); returns its path."""
    table = results / TABLE.name
    tmp = table.with_name(f".{table.name}.{os.getpid()}")
    tmp.write_text(table_text(load_rows(results), results.name))
    os.replace(tmp, table)
    return table


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="auto_table", description=__doc__.split("\n")[0])
    p.add_argument("--results", type=Path, default=RESULTS)
    p.add_argument("--write", action="store_true", help=f"rewrite {TABLE.relative_to(ROOT)}")
    p.add_argument("--readme", action="store_true", help="rewrite the README's block between its markers")
    args = p.parse_args(argv)
    rows = load_rows(args.results)
    print(table_text(rows, args.results.name))
    if args.write:
        write_table(args.results)
    if args.readme:
        README.write_text(replace_block(README.read_text(), render(rows)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
