"""Warm against cold start on a real volume that ships in an installed package.

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/volume_warm.py NAME [--variants cold,warm,warm-opt] \\
        [--data emri_small|example4d] \\
        -- --task mri --acceleration 4 --stop auto --precision fp32 ...
    python benchmarks/volume_warm.py NAME --table   # rewrite NAME.md and the criteria from NAME.json

Runs ``aseqdip volume`` once per variant (``cold``: ``--cold``; ``warm``: the default warm start;
``warm-opt``: ``--warm-optimizer``; ``warm-mix1``, ``warm-opt-mix1``: the same with ``--warm-mix 1``, the
neighbour's weights as they are; ``warm-own``: ``--no-warm-input``, the slice's own z_0; ``warm-neighbour``: ``--warm-input``, the
neighbour's estimate as z_0), in a subprocess with one torch thread, on the same options, and
writes ``benchmarks/results/volume-warm/NAME.json`` (every slice's record, the volumes' summaries, the
CPU) and ``NAME.md`` (the per-slice table and the three criteria of issue 19: warm mean PSNR within
0.3 dB of cold, warm slices after the first at most a third of cold's steps, the whole warm volume under
3x one cold slice's time). PSNR is the returned image's (what a user gets); the oracle best is labelled.
Variants already in ``NAME.json`` (same options) are kept, so they can be measured one at a time.
``--work DIR`` keeps each variant's volume folder in DIR and passes ``--resume``: a variant killed at
the end of a session continues at the slice it was on when the same command is run again.
A variant ``warm-fX`` is the default warm start with ``--warm-fraction X``.

The volumes (``--data``): ``emri_small`` (the default), pydicom-data's enhanced multi-frame MR
``emri_small.dcm``, 10 frames of 64x64 whose neighbours differ by about 21 dB PSNR; ``example4d``,
nibabel's test EPI ``example4d.nii.gz`` (128x96x24, 2.2 mm slices, the first of its two time points, written
as a 3-D NIfTI with its affine), whose neighbours differ by about 28 dB, as in a typical MR series; pass
``--slices 10`` to take its 10 middle slices.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from aseqdip.report import cpu_model

RESULTS = Path(__file__).resolve().parent / "results" / "volume-warm"
FLAGS = {"cold": ["--cold"], "warm": [], "warm-opt": ["--warm-optimizer"], "warm-mix1": ["--warm-mix", "1"],
         "warm-opt-mix1": ["--warm-optimizer", "--warm-mix", "1"], "warm-own": ["--no-warm-input"],
         "warm-neighbour": ["--warm-input"]}


def gpu_name(options: list[str]) -> str | None:
    """The GPU's name and torch version when the options run on CUDA (``--device cuda[:N]``), else None."""
    device = options[options.index("--device") + 1] if "--device" in options[:-1] else "cpu"
    if not device.startswith("cuda"):
        return None
    import torch

    return f"{torch.cuda.get_device_name(torch.device(device))}, torch {torch.__version__}"


def variant_flags(variant: str) -> list[str] | None:
    """The ``aseqdip volume`` flags of a variant name, or None for an unknown name."""
    if variant.startswith("warm-f"):
        try:
            return ["--warm-fraction", str(float(variant[len("warm-f"):]))]
        except ValueError:
            return None
    return FLAGS.get(variant)


DATA = {"emri_small": "pydicom-data's `emri_small.dcm` (10 frames, 64x64 MR)",
        "example4d": "nibabel's `tests/data/example4d.nii.gz` (EPI, 128x96x24, 2.2 mm slices; time point 0)"}


def volume_file(data: str, where: Path) -> str:
    """The input file of ``--data``: a package's own file, or (example4d) its first time point as 3-D NIfTI."""
    if data == "emri_small":
        from pydicom.data import get_testdata_file

        return get_testdata_file("emri_small.dcm")
    import nibabel as nib

    source = Path(nib.__file__).parent / "tests" / "data" / "example4d.nii.gz"
    image = nib.load(source)
    target = where / "example4d-t0.nii.gz"
    if not target.exists():
        nib.save(nib.Nifti1Image(np.asarray(image.dataobj)[..., 0], image.affine), target)
    return str(target)


def run_variant(variant: str, options: list[str], where: Path, resume: bool = False,
                data: str = "emri_small") -> dict[str, Any]:
    out = where / variant
    argv = [sys.executable, "-m", "aseqdip.cli", "volume", "--input", volume_file(data, where),
            "--out", str(out), "--no-progress", *options, *variant_flags(variant), *(["--resume"] if resume else [])]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{variant} failed ({done.returncode}): {done.stderr.strip()}")
    summary = json.loads((out / "volume.json").read_text())
    with open(out / "slices.csv", newline="") as f:
        slices = list(csv.DictReader(f))
    return {"command": " ".join(argv[2:]), "summary": summary, "slices": slices, "printed": done.stdout.strip(),
            "cpu": cpu_model(), "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}


def table(name: str, result: dict[str, Any]) -> str:
    """The markdown page: per-slice rows of every variant, the means, and the criteria against cold."""
    where = (f"GPU: {result['device']}; host CPU: {result['cpu']}" if result.get("device")
             else f"CPU: {result['cpu']}, one torch thread")
    when = f"{where}; {result['date']}."
    machines = {v: (run.get("cpu", result["cpu"]), run.get("date", result["date"])) for v, run in result["variants"].items()}
    if len({cpu for cpu, _ in machines.values()}) > 1:
        # runs of one command on two CPUs drift apart within tens of steps (docs/auto.md): say which is which
        when = ("One torch thread; the variants ran on different CPUs, so compare a variant with one of its own CPU "
                "(runs drift apart from rounding): "
                + "; ".join(f"{v}: {cpu}, {date}" for v, (cpu, date) in machines.items()) + ".")
    lines = [f"# Volume warm start: {name}", "", when,
             f"Options: `{' '.join(result['options'])}` on {DATA[result.get('data', 'emri_small')]}.",
             "PSNR/SSIM: the returned image's, against the slice as read (the simulation's ground truth). "
             "Oracle best: the best PSNR along the run, found with the ground truth (no user has it).", "",
             "| variant | slice | start | steps | seconds | rule / stop | PSNR | SSIM | oracle best (@step) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for variant, run in result["variants"].items():
        for r in sorted(run["slices"], key=lambda r: int(r["index"])):
            lines.append(f"| {variant} | {r['index']} | {r['start']} | {r['steps']} | {float(r['wall_seconds']):.1f} | "
                         f"{r['rule']} / {r['stop_reason']} | {r['psnr']} | {r['ssim']} | "
                         f"{r['psnr_oracle_best']} (@{r['iteration_oracle_best']}) |")
    lines += ["", "| variant | mean PSNR | mean SSIM | mean oracle best | total steps | total s | first slice "
                  "steps / s | later slices mean steps / s |", "|---|---|---|---|---|---|---|---|"]
    for variant, run in result["variants"].items():
        s = run["summary"]
        lines.append(f"| {variant} | {s['mean_psnr']} | {s['mean_ssim']} | {s['mean_psnr_oracle_best']} | "
                     f"{s['total_steps']} | {s['total_seconds']:.1f} | {s['first_slice']['steps']} / "
                     f"{s['first_slice']['seconds']:.1f} | {s['later_slices_mean_steps']} / "
                     f"{s['later_slices_mean_seconds']} |")
    if "cold" in result["variants"]:
        lines += ["", "Criteria of issue 19 against cold:", ""]
        for variant, c in result["criteria"].items():
            lines.append(f"- {variant}: mean PSNR {c['psnr_gap_db']:+.2f} dB against cold (needs >= -0.3: "
                         f"{'met' if c['psnr_ok'] else 'NOT met'}); later slices {c['later_steps_ratio']:.3f} of cold's "
                         f"steps (needs <= 1/3: {'met' if c['steps_ok'] else 'NOT met'}); whole volume "
                         f"{c['volume_over_one_cold_slice']:.2f}x one cold slice's time (needs < 3: "
                         f"{'met' if c['time_ok'] else 'NOT met'}; in steps, which other processes on the machine "
                         f"do not change: {c['volume_over_one_cold_slice_in_steps']:.2f}x)"
                         + (f"; stopped at each slice's oracle best (ground truth) the later slices would take "
                            f"{c['later_oracle_steps_ratio']:.3f} of cold's steps to theirs"
                            if "later_oracle_steps_ratio" in c else ""))
    return "\n".join(lines) + "\n"


def criteria(variants: dict[str, Any]) -> dict[str, Any]:
    """Each warm variant against cold: PSNR gap, later slices' steps ratio, volume time over one cold slice."""
    cold = variants["cold"]["summary"]
    cold_slice_seconds = cold["total_seconds"] / len(variants["cold"]["slices"])
    later_cold = [int(r["steps"]) for r in variants["cold"]["slices"] if int(r["order"]) != 0]
    later_oracle_cold = [int(r["iteration_oracle_best"]) for r in variants["cold"]["slices"] if int(r["order"]) != 0]
    out = {}
    for variant, run in variants.items():
        if variant == "cold":
            continue
        s = run["summary"]
        later = [int(r["steps"]) for r in run["slices"] if int(r["order"]) != 0]
        ratio = (sum(later) / len(later)) / (sum(later_cold) / len(later_cold))
        # the same ratio had each slice stopped at its oracle best (found with the ground truth, every 10
        # steps): what a rule that stops every slice at its best would reach with this start
        oracle = [int(r["iteration_oracle_best"]) for r in run["slices"] if int(r["order"]) != 0]
        oracle_ratio = (sum(oracle) / len(oracle)) / (sum(later_oracle_cold) / len(later_oracle_cold))
        over = s["total_seconds"] / cold_slice_seconds
        gap = s["mean_psnr"] - cold["mean_psnr"]
        cold_slice_steps = cold["total_steps"] / len(variants["cold"]["slices"])
        out[variant] = {"psnr_gap_db": round(gap, 4), "psnr_ok": gap >= -0.3, "later_steps_ratio": round(ratio, 4),
                        "steps_ok": ratio <= 1 / 3, "later_oracle_steps_ratio": round(oracle_ratio, 4),
                        "volume_over_one_cold_slice": round(over, 3),
                        "volume_over_one_cold_slice_in_steps": round(s["total_steps"] / cold_slice_steps, 3),
                        "one_cold_slice_seconds": round(cold_slice_seconds, 3), "time_ok": over < 3}
    return out


def keep_others(result: dict[str, Any], earlier: Path, variants: list[str]) -> None:
    """Add the variants another process has written under this name meanwhile (warm and cold can run at once)."""
    if earlier.exists():
        saved = json.loads(earlier.read_text())
        for k, v in saved["variants"].items():
            if k not in variants:
                v.setdefault("cpu", saved.get("cpu"))  # rows written before each variant kept its own machine
                v.setdefault("date", saved.get("date"))
                result["variants"].setdefault(k, v)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("name")
    p.add_argument("--variants", default="cold,warm,warm-opt")
    p.add_argument("--data", choices=sorted(DATA), default="emri_small", help="the volume (default: %(default)s)")
    p.add_argument("--table", action="store_true", help="only rewrite NAME.md (and the criteria) from NAME.json")
    p.add_argument("--work", type=Path, default=None,
                   help="keep the volumes here and resume an interrupted variant (default: a temporary folder)")
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    args = p.parse_args(argv[:cut])  # after "--": options of 'aseqdip volume'
    options = argv[cut + 1:]
    if args.table:
        saved = json.loads((RESULTS / f"{args.name}.json").read_text())
        if "cold" in saved["variants"]:
            saved["criteria"] = criteria(saved["variants"])
        (RESULTS / f"{args.name}.json").write_text(json.dumps(saved, indent=1) + "\n")
        (RESULTS / f"{args.name}.md").write_text(table(args.name, saved))
        return
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if variant_flags(v) is None]
    if unknown:
        p.error(f"unknown variants {unknown}; choose from {sorted(FLAGS)}")
    result: dict[str, Any] = {"name": args.name, "cpu": cpu_model(), "torch_threads": 1, "device": gpu_name(options),
                              "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                              "options": options, "data": args.data, "variants": {}}
    RESULTS.mkdir(parents=True, exist_ok=True)
    earlier = RESULTS / f"{args.name}.json"
    if earlier.exists():  # variants measured before under this name, with the same options, are kept
        saved = json.loads(earlier.read_text())
        if saved.get("options") != options or saved.get("data", "emri_small") != args.data:
            p.error(f"{earlier} was measured with other options ({' '.join(saved.get('options', []))}) or "
                    f"--data ({saved.get('data', 'emri_small')}); "
                    f"choose another name")
        keep_others(result, earlier, variants)
    with tempfile.TemporaryDirectory() as tmp:
        where = args.work or Path(tmp)
        where.mkdir(parents=True, exist_ok=True)
        for variant in variants:
            result["variants"][variant] = run_variant(variant, options, where, resume=args.work is not None,
                                                   data=args.data)
            print(f"{variant}: {result['variants'][variant]['printed'].splitlines()[-1]}", flush=True)
            keep_others(result, earlier, variants)
            (RESULTS / f"{args.name}.json").write_text(json.dumps(result, indent=1) + "\n")  # partial rows kept
    keep_others(result, earlier, variants)
    if "cold" in result["variants"]:
        result["criteria"] = criteria(result["variants"])
    (RESULTS / f"{args.name}.json").write_text(json.dumps(result, indent=1) + "\n")
    (RESULTS / f"{args.name}.md").write_text(table(args.name, result))
    print(f"-> {RESULTS / (args.name + '.md')}")


if __name__ == "__main__":
    main()
