"""Tables (Markdown + JSON), figures (PNG) and report.md from the runs' metrics.json files.

PSNR/SSIM are those of the image each method returns. The best PSNR along a run needs the ground truth:
it appears only in columns and figures headed "oracle".
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import math
import platform
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from aseqdip.io.outputs import atomic_write, write_json

from .paper_data import PAPER_DATA, PREPROCESSING, TASK_GROUP, Item
from .paper_numbers import SOURCE, paper_for, paper_rows
from .paper_plan import Profile, Run

MEASUREMENT = {"mri": "zero-filled A^H y", "ct": "FBP (x0)", "denoise": "noisy input y", "inpaint": "masked input y",
               "deblur": "blurred input y"}


# ---- numbers ---------------------------------------------------------------------------------------
def stats(values: Iterable[float | None]) -> dict[str, Any]:
    """Mean, sample standard deviation and count of the finite values."""
    v = [float(x) for x in values if x is not None and math.isfinite(float(x))]
    if not v:
        return {"mean": None, "std": None, "n": 0}
    mean = sum(v) / len(v)
    std = math.sqrt(sum((x - mean) ** 2 for x in v) / (len(v) - 1)) if len(v) > 1 else 0.0
    return {"mean": mean, "std": std, "n": len(v)}


def fmt(s: dict[str, Any] | None, digits: int = 2) -> str:
    if not s or s.get("mean") is None:
        return "-"
    return f"{s['mean']:.{digits}f}" + (f" ± {s['std']:.{digits}f}" if s["n"] > 1 else "")


def load(out: Path, runs: list[Run]) -> list[tuple[Run, dict[str, Any]]]:
    """The finished runs and their metrics."""
    found = []
    for run in runs:
        path = out / "runs" / run.experiment / run.run_id / "metrics.json"
        if path.exists():
            found.append((run, json.loads(path.read_text())))
    return found


def groups(found: list[tuple[Run, dict[str, Any]]], experiment: str) -> dict[tuple[str, str, str], list[dict]]:
    """Metrics of one experiment grouped by (task, setting, variant), in plan order."""
    out: dict[tuple[str, str, str], list[dict]] = {}
    for run, m in found:
        if run.experiment == experiment:
            out.setdefault((run.task, run.setting, run.variant), []).append(m)
    return out


def summary(ms: list[dict[str, Any]]) -> dict[str, Any]:
    return {"psnr": stats(m.get("psnr") for m in ms), "ssim": stats(m.get("ssim") for m in ms),
            "seconds": stats(m.get("seconds") for m in ms), "iterations": stats(m.get("iterations") for m in ms),
            "oracle_best_psnr": stats(m.get("psnr_oracle_best") for m in ms),
            "oracle_best_iteration": stats(m.get("iteration_oracle_best") for m in ms)}


def mean_curve(ms: list[dict[str, Any]]) -> tuple[list[int], list[float]]:
    """The PSNR history (oracle monitor) averaged over runs, on the iterations all of them recorded."""
    curves = [dict(zip(m["history"]["psnr_iteration"], m["history"]["psnr"])) for m in ms
              if m.get("history", {}).get("psnr")]
    if not curves:
        return [], []
    its = sorted(set.intersection(*(set(c) for c in curves)))
    return its, [sum(c[i] for c in curves) / len(curves) for i in its]


# ---- files -----------------------------------------------------------------------------------------
def _save_figure(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write(path, lambda f: f.write(buf.getvalue()))


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode()))


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


# ---- Table 2 -----------------------------------------------------------------------------------------
def table2(found: list[tuple[Run, dict[str, Any]]], tables: Path, figures: Path) -> str:
    grouped = groups(found, "table2")
    if not grouped:
        return ""
    rows_json: list[dict[str, Any]] = []
    md_rows: list[list[str]] = []
    seen_measurement: set[tuple[str, str]] = set()
    for (task, setting, variant), ms in grouped.items():
        if (task, setting) not in seen_measurement:  # the simple reconstruction every method starts from
            seen_measurement.add((task, setting))
            firsts = {(m.get("image"), m.get("seed")): m for mm in
                      (v for (t, s, _), v in grouped.items() if (t, s) == (task, setting)) for m in mm}
            meas = {"psnr": stats(m.get("psnr_measurement") for m in firsts.values()),
                    "ssim": stats(m.get("ssim_measurement") for m in firsts.values())}
            if task != "ct":  # for CT the measurement is FBP, which runs as a method below
                rows_json.append({"task": task, "setting": setting, "method": MEASUREMENT[task], **meas})
                md_rows.append([task, setting, MEASUREMENT[task], str(meas["psnr"]["n"]), fmt(meas["psnr"]),
                                fmt(meas["ssim"], 3), "-", "-", "-", "-", "-", "-"])
        s = summary(ms)
        paper = paper_for(task, setting, variant)
        rows_json.append({"task": task, "setting": setting, "method": variant, **s, "paper": paper})
        md_rows.append([task, setting, variant, str(s["psnr"]["n"]), fmt(s["psnr"]), fmt(s["ssim"], 3),
                        fmt(s["seconds"], 1),
                        "-" if not paper else f"{paper['psnr']:.2f} ± {paper['psnr_std']:.2f}",
                        "-" if not paper else f"{paper['ssim']:.3f} ± {paper['ssim_std']:.3f}",
                        "-" if not paper else f"{paper['minutes']:g}",
                        fmt(s["oracle_best_psnr"]), fmt(s["oracle_best_iteration"], 0)])
    header = ["task", "setting", "method", "n", "PSNR (dB)", "SSIM", "time (s)", "paper PSNR", "paper SSIM",
              "paper time (min)", "oracle: best PSNR along the run (dB)", "oracle: its iteration"]
    md = _md_table(header, md_rows)
    _write_text(tables / "table2.md", md)
    write_json(tables / "table2.json", {"rows": rows_json, "paper_source": SOURCE,
                                         "note": "psnr/ssim: the returned image; oracle_*: best along the run, "
                                                 "found with the ground truth (no user has it)"})
    _table2_figure(rows_json, figures / "table2_psnr.png")
    return md


def _table2_figure(rows: list[dict[str, Any]], path: Path) -> None:
    plt = _pyplot()
    cases = list(dict.fromkeys((r["task"], r["setting"]) for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    if not cases:
        return
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(cases)), 3.8))
    width = 0.8 / max(len(methods), 1)
    for j, method in enumerate(methods):
        xs, ys, es = [], [], []
        for i, case in enumerate(cases):
            for r in rows:
                if (r["task"], r["setting"]) == case and r["method"] == method and r["psnr"]["mean"] is not None:
                    xs.append(i + (j - (len(methods) - 1) / 2) * width)
                    ys.append(r["psnr"]["mean"])
                    es.append(r["psnr"]["std"] or 0.0)
        if xs:
            ax.bar(xs, ys, width, yerr=es, label=method, capsize=2)
    ax.set_xticks(range(len(cases)))
    ax.set_xticklabels([f"{t}\n{s}" for t, s in cases], fontsize=8)
    ax.set_ylabel("PSNR of the returned image (dB)")
    ax.set_title("Table 2: mean ± std over images", fontsize=9)
    ax.legend(fontsize=7, ncol=3)
    ax.grid(axis="y", alpha=0.3)
    _save_figure(fig, path)


def paper_table2_md() -> str:
    rows = []
    for task in ("mri", "ct", "denoise", "inpaint", "deblur"):
        for method, p1, p2, s1, s2, minutes in paper_rows(task):
            rows.append([task, method, f"{p1[0]:.2f} ± {p1[1]:.2f}", "-" if p2 is None else f"{p2[0]:.2f} ± {p2[1]:.2f}",
                         f"{s1[0]:.3f} ± {s1[1]:.3f}", "-" if s2 is None else f"{s2[0]:.3f} ± {s2[1]:.3f}",
                         f"{minutes:g}"])
    return _md_table(["task", "method", "PSNR setting 1", "PSNR setting 2", "SSIM setting 1", "SSIM setting 2",
                      "minutes"], rows)


# ---- curves: Figure 4 and the lambda ablation ----------------------------------------------------------
def curves(found: list[tuple[Run, dict[str, Any]]], experiment: str, tables: Path, figures: Path,
           title: str) -> str:
    grouped = groups(found, experiment)
    if not grouped:
        return ""
    plt = _pyplot()
    tasks = list(dict.fromkeys(t for t, _, _ in grouped))
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.2 * len(tasks), 3.6), squeeze=False)
    rows_json, md_rows = [], []
    for ax, task in zip(axes[0], tasks):
        for (t, setting, variant), ms in grouped.items():
            if t != task:
                continue
            its, psnr = mean_curve(ms)
            style = "--" if "lambda=0" in variant else "-"
            if its:
                ax.plot(its, psnr, style, lw=1.3, label=variant)
            peak = max(range(len(psnr)), key=psnr.__getitem__) if psnr else None
            s = summary(ms)
            row = {"task": task, "setting": setting, "variant": variant, **s,
                   "mean_curve": {"iteration": its, "psnr": psnr},
                   "mean_curve_peak": None if peak is None else {"iteration": its[peak], "psnr": psnr[peak]}}
            rows_json.append(row)
            md_rows.append([task, setting, variant, str(s["psnr"]["n"]), fmt(s["iterations"], 0), fmt(s["psnr"]),
                            fmt(s["ssim"], 3), fmt(s["oracle_best_psnr"]), fmt(s["oracle_best_iteration"], 0),
                            "-" if peak is None else f"{its[peak]} ({psnr[peak]:.2f} dB)"])
            ax.set_title(f"{task} ({setting})", fontsize=9)
        x0 = stats(m.get("psnr_measurement") for (t, _, _), ms in grouped.items() if t == task for m in ms)
        if x0["mean"] is not None:
            ax.axhline(x0["mean"], color="grey", ls=":", lw=1, label=MEASUREMENT[task])
        ax.set_xlabel("iteration")
        ax.set_ylabel("mean PSNR (dB), oracle monitor")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    _save_figure(fig, figures / f"{experiment}.png")
    header = ["task", "setting", "variant", "n", "iterations", "PSNR returned (dB)", "SSIM returned",
              "oracle: best PSNR (dB)", "oracle: its iteration", "oracle: peak of the mean curve"]
    md = _md_table(header, md_rows)
    _write_text(tables / f"{experiment}.md", md)
    write_json(tables / f"{experiment}.json", {"rows": rows_json})
    return md


# ---- N/K ablation ---------------------------------------------------------------------------------------
def nk(found: list[tuple[Run, dict[str, Any]]], tables: Path, figures: Path) -> str:
    grouped = groups(found, "nk")
    if not grouped:
        return ""
    rows_json, md_rows = [], []
    for (task, setting, variant), ms in grouped.items():
        s = summary(ms)
        rows_json.append({"task": task, "setting": setting, "variant": variant, **s})
        md_rows.append([task, setting, variant, str(s["psnr"]["n"]), fmt(s["psnr"]), fmt(s["ssim"], 3),
                        fmt(s["seconds"], 1), fmt(s["oracle_best_psnr"])])
    plt = _pyplot()
    tasks = list(dict.fromkeys(r["task"] for r in rows_json))
    variants = list(dict.fromkeys(r["variant"] for r in rows_json))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.5 * len(tasks)), 3.6))
    width = 0.8 / len(variants)
    for j, variant in enumerate(variants):
        pts = [(i, r["psnr"]["mean"], r["psnr"]["std"] or 0.0) for i, t in enumerate(tasks) for r in rows_json
               if r["task"] == t and r["variant"] == variant and r["psnr"]["mean"] is not None]
        if pts:
            ax.bar([i + (j - (len(variants) - 1) / 2) * width for i, _, _ in pts], [p for _, p, _ in pts], width,
                   yerr=[e for _, _, e in pts], label=variant, capsize=2)
    ax.set_xticks(range(len(tasks)))
    ax.set_xticklabels(tasks)
    ax.set_ylabel("PSNR of the returned image (dB)")
    ax.set_title("N/K ablation (Appendix C.5): N steps per input update, K updates, N*K fixed", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    _save_figure(fig, figures / "nk.png")
    md = _md_table(["task", "setting", "N, K", "n", "PSNR (dB)", "SSIM", "time (s)", "oracle: best PSNR (dB)"],
                   md_rows)
    _write_text(tables / "nk.md", md)
    write_json(tables / "nk.json", {"rows": rows_json})
    return md


# ---- Figure 1 ---------------------------------------------------------------------------------------------
def fig1(found: list[tuple[Run, dict[str, Any]]], tables: Path, figures: Path) -> str:
    points: dict[tuple[str, float], list[dict]] = {}
    for run, m in found:
        if run.experiment == "fig1":
            points.setdefault((run.input_base or "", float(run.input_sigma or 0)), []).append(m)
    if not points:
        return ""
    rows_json, md_rows = [], []
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    for base, label in (("truth", "input x* + noise"), ("zero", "input 0 + noise (pure noise)")):
        pts = sorted((sigma, summary(ms)) for (b, sigma), ms in points.items() if b == base)
        for sigma, s in pts:
            rows_json.append({"input": base, "sigma": sigma, **s})
            md_rows.append([label, f"{sigma:g}", str(s["oracle_best_psnr"]["n"]), fmt(s["oracle_best_psnr"]),
                            fmt(s["oracle_best_iteration"], 0), fmt(s["psnr"])])
        good = [(sg, s["oracle_best_psnr"]) for sg, s in pts if s["oracle_best_psnr"]["mean"] is not None]
        if good:
            ax.errorbar([g for g, _ in good], [s["mean"] for _, s in good], yerr=[s["std"] for _, s in good],
                        marker="o", capsize=2, label=label, color="C0" if base == "truth" else "C3")
    ax.set_xscale("log")
    ax.set_xlabel("sigma of the Gaussian noise in DIP's input")
    ax.set_ylabel("oracle: best PSNR along the run (dB)")
    ax.set_title("Figure 1: Vanilla DIP on MRI 4x with a given input", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    _save_figure(fig, figures / "fig1.png")
    md = _md_table(["DIP input", "sigma", "n", "oracle: best PSNR (dB)", "oracle: its iteration",
                    "PSNR returned at the end (dB)"], md_rows)
    _write_text(tables / "fig1.md", md)
    write_json(tables / "fig1.json", {"rows": rows_json})
    return md


# ---- report.md ------------------------------------------------------------------------------------------
def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return {"cpu": cpu, "cpu_cores": str(os.cpu_count()), "torch_threads": str(torch.get_num_threads()), "gpu": gpu,
            "torch": torch.__version__, "python": platform.python_version()}


def data_section(data: dict[str, list[Item]], folders: dict[str, str | None], profile: Profile,
                 used_groups: set[str]) -> str:
    lines = ["## Data\n", "Everything ships inside installed packages; nothing is downloaded.\n"]
    for group in (g for g in ("natural", "mri", "ct") if g in used_groups):
        paper, ours = PAPER_DATA[group]
        tasks = ", ".join(t for t, g in TASK_GROUP.items() if g == group)
        used = folders.get(group)
        lines.append(f"**{group}** ({tasks}), {profile.sizes[group]}x{profile.sizes[group]} px. "
                     f"Paper: {paper}. Here: {'a user folder, ' + used if used else ours}.")
        lines.append(f"Preprocessing: {PREPROCESSING[group]}.\n")
        lines.append(_md_table(["id", "source", "native size / notes", "file"],
                               [[i.ident, i.source, i.native, f"`{_short(i.spec)}`"] for i in data[group]]))
    if any(i.kind == "kspace" for i in data["mri"]):
        lines.append(f"fastMRI files: {PREPROCESSING['fastmri']}.\n")
    lines.append("Deblurring: the paper's operator is BKSE's learned blur network (weights not shipped); the "
                 "deblur task's default stands in: camera-shake blur seen through a saturating camera response "
                 "(gamma 2.2, white level 0.9), noise 0.05 on the [-1, 1] scale (aseqdip.tasks.deblur).\n")
    return "\n".join(lines)


def _short(spec: str) -> str:
    return spec.split("site-packages/", 1)[-1]


def write_report(out: Path, profile: Profile, runs: list[Run], data: dict[str, list[Item]],
                 folders: dict[str, str | None], status: dict[str, Any], argv: list[str]) -> None:
    tables, figures = out / "tables", out / "figures"
    tables.mkdir(parents=True, exist_ok=True)
    figures.mkdir(parents=True, exist_ok=True)
    found = load(out, runs)
    write_json(out / "runs.json", {"runs": [{"experiment": r.experiment, "run_id": r.run_id,
                                             "command": "aseqdip " + " ".join(r.argv) + f" --out {out}/runs/"
                                                        f"{r.experiment}/{r.run_id}",
                                             "dip_input": None if r.input_sigma is None else
                                             {"base": r.input_base, "sigma": r.input_sigma},
                                             "finished": (out / "runs" / r.experiment / r.run_id /
                                                          "metrics.json").exists()} for r in runs]})
    mach = machine()
    seeds = sorted({r.seed for r in runs})
    parts = [f"# aSeqDIP: the paper's experiments on bundled real data ({profile.name} profile)\n",
             f"**{profile.label}**\n",
             f"- date: {_dt.datetime.now(_dt.UTC).isoformat(timespec='seconds')}",
             f"- machine: {mach['cpu']} ({mach['cpu_cores']} cores, torch threads {mach['torch_threads']}); "
             f"GPU: {mach['gpu']}; torch {mach['torch']}, Python {mach['python']}",
             f"- command: `{' '.join(argv)}`",
             f"- runs: {len(found)} of {len(runs)} finished; this call ran {status['ran']}, skipped "
             f"{status['skipped']} already finished, {len(status['failed'])} failed, {status['seconds']} s",
             f"- iterations: {profile.iterations} (Table 2, N/K), {profile.curve_iterations} (Figure 4), "
             f"{profile.lambda_iterations} (lambda ablation), {profile.fig1_iterations} (Figure 1); "
             f"paper: 4000, 8000, 10000, not stated",
             f"- seeds: {', '.join(map(str, seeds))} per image (the seed sets the network, the input and the "
             "simulated measurement: mask, noise, kernel, coil phase); Figure 1's input noise uses seed 10000 + seed",
             "- every run's exact command is in `runs.json`; each run's files are in `runs/<experiment>/<run id>/`\n",
             "PSNR and SSIM are those of the image each method **returns** (the last iterate, or the method's own "
             "output rule). Columns and figures headed **oracle** use the ground truth to pick the best iterate "
             "along the run: no user has that.\n",
             data_section(data, folders, profile, {TASK_GROUP[r.task] for r in runs})]
    md = table2(found, tables, figures)
    if md:
        parts += ["## Table 2: our runs beside the paper's numbers\n",
                  f"Paper columns: {SOURCE}. The paper ran its data ({PAPER_DATA['mri'][0]}; "
                  f"{PAPER_DATA['ct'][0]}; {PAPER_DATA['natural'][0]}) at its sizes; ours differ (see Data), "
                  "so compare orderings and margins, not absolute values. Run time: ours in seconds on this "
                  "machine, the paper's in minutes on an RTX 5000.\n", md,
                  "![Table 2 PSNR](figures/table2_psnr.png)\n",
                  "The paper's Table 2 in full (settings 1/2: MRI 4x/8x, CT 18/30 views, denoising sigma 15/30, "
                  "inpainting HIAR 0.1/0.25; deblurring one setting; Score-MRI, MCG and DPS need training data, "
                  "refguided a reference image; we run neither):\n",
                  paper_table2_md()]
    md = curves(found, "fig4", tables, figures, "Figure 4: mean PSNR against iteration (oracle monitor, "
                                                "ground truth), twice the budget")
    if md:
        parts += ["## Figure 4: PSNR against iteration, MRI 4x and CT 18 views\n", "![Figure 4](figures/fig4.png)\n",
                  md]
    md = curves(found, "lambda", tables, figures, "lambda ablation (Appendix C.4, Figure 9): aSeqDIP, N = 2")
    if md:
        parts += ["## Lambda ablation (Appendix C.4): MRI 4x\n", "![lambda](figures/lambda.png)\n", md]
    md = nk(found, tables, figures)
    if md:
        parts += ["## N/K ablation (Appendix C.5)\n", "![N/K](figures/nk.png)\n", md]
    md = fig1(found, tables, figures)
    if md:
        parts += ["## Figure 1: DIP's best PSNR with the truth plus noise as its input (MRI 4x)\n",
                  "The input is x* + sigma n (x* the complex ground truth, magnitude at most 1) or sigma n alone; "
                  "the paper reports the best PSNR before overfitting, which is an oracle.\n",
                  "![Figure 1](figures/fig1.png)\n", md]
    if status["failed"]:
        parts += ["## Failed runs\n", _md_table(["experiment", "run", "exit status", "command"],
                                                [[f["experiment"], f["run_id"], str(f["exit_status"]),
                                                  f"`{f['command']}`"] for f in status["failed"]])]
    text = "\n".join(parts) + "\n"
    _write_text(out / "report.md", text)
