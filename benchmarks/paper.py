"""Reproduce the paper's experiments on real, bundled data: Table 2, Figure 4, the lambda and N/K ablations
(Appendix C.4, C.5) and Figure 1; then tables (Markdown, JSON), figures (PNG) and report.md.

    python -m benchmarks.paper --profile quick --out runs/paper-quick
    python -m benchmarks.paper --profile cpu --out runs/paper-cpu                # hours
    python -m benchmarks.paper --profile paper --out runs/paper --device cuda    # a GPU job
    python -m benchmarks.paper --profile quick --out runs/q --only table2 --tasks denoise
    python -m benchmarks.paper --profile cpu --out runs/c --estimate             # time it first

Every run goes through the ``aseqdip`` command's own code (``aseqdip.cli.main``) and writes its
metrics.json into ``OUT/runs/<experiment>/<run id>/``; a run whose metrics.json exists is skipped, so an
interrupted benchmark resumes where it stopped. Figure 1 feeds DIP a given input (the truth plus noise),
which the command line cannot express, so its runs use the same pipeline (``pipeline.task_class``,
``pipeline.make_method``, ``pipeline.solve_and_save``) with the input added.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

from aseqdip.errors import UserInputError

from .paper_data import data_lists
from .paper_plan import EXPERIMENTS, PROFILES, TASK_ORDER, Run, plan


def run_dir(out: Path, run: Run) -> Path:
    return out / "runs" / run.experiment / run.run_id


def _check_same_run(path: Path, run: Run) -> None:
    """A finished run found in OUT must be the one planned (same image, size, iterations), not another profile's."""
    m = json.loads(path.read_text())
    argv = list(run.argv)
    size = int(argv[argv.index("--size") + 1]) if "--size" in argv else None
    its = int(argv[argv.index("--iterations") + 1]) if "--iterations" in argv else None
    found_its = m.get("hyperparameters", {}).get("iterations")
    if (size is not None and m.get("size") != size) or (its is not None and found_its != its):
        raise UserInputError(f"{path} is from another profile (size {m.get('size')}, {found_its} iterations; planned "
                             f"{size}, {its}); use a fresh --out folder")


def _fig1_input(problem: Any, run: Run) -> Any:
    """DIP's given input for Figure 1: x* + sigma n ("truth") or sigma n ("zero"), n ~ N(0, I), seeded."""
    import torch

    if problem.x_true is None:
        raise UserInputError(f"{run.item.spec}: Figure 1 needs a ground truth")
    gen = torch.Generator().manual_seed(10_000 + run.seed)
    noise = torch.randn(problem.x0.shape, generator=gen) * float(run.input_sigma)
    base = problem.x_true.cpu() if run.input_base == "truth" else torch.zeros_like(problem.x0.cpu())
    return base.to(problem.x0.dtype) + noise


def _run_fig1(run: Run, out: Path) -> int:
    """One Figure 1 run through the CLI's builders, with DIP's input given."""
    from aseqdip import cli, pipeline

    try:
        options = cli.options_from_argv([*run.argv, "--out", str(out)])
        task_cls = pipeline.task_class(options)
        if options.command == "run":
            task = pipeline.make_task(options, task_cls)
            problem = task.simulate(task.load(options.image, size=options.size), seed=options.seed)
            extra = {"image": options.image, "size": options.size}
        else:
            problem, extra = task_cls.from_measurement(seed=options.seed, **options.task_options), {}
        options = dataclasses.replace(options, extra_method_arguments={"input": _fig1_input(problem, run)})
        method = pipeline.make_method(options, task_cls)
        extra.update(input_base=run.input_base, input_sigma=run.input_sigma)
        pipeline.solve_and_save(options, method, problem, extra)
    except UserInputError as exc:
        print(f"aseqdip: error: {exc}", file=sys.stderr)
        return cli.EXIT_USAGE
    return 0


def execute(runs: list[Run], out: Path, log: Any = print) -> dict[str, Any]:
    """Run what is not finished yet; returns counts and the failures (a failed run is reported, not fatal)."""
    from aseqdip.cli import main as aseqdip_main

    done = skipped = 0
    failed: list[dict[str, Any]] = []
    start = time.perf_counter()
    for i, run in enumerate(runs, 1):
        folder = run_dir(out, run)
        metrics = folder / "metrics.json"
        if metrics.exists():
            _check_same_run(metrics, run)
            skipped += 1
            continue
        log(f"[{i}/{len(runs)}] {run.experiment} {run.run_id}  ({time.perf_counter() - start:.0f} s so far)")
        if run.input_sigma is not None:
            rc = _run_fig1(run, folder)
        else:
            rc = aseqdip_main([*run.argv, "--out", str(folder)])
        if rc != 0 or not metrics.exists():
            failed.append({"experiment": run.experiment, "run_id": run.run_id, "exit_status": rc,
                           "command": "aseqdip " + " ".join(run.argv)})
        else:
            done += 1
    return {"ran": done, "skipped": skipped, "failed": failed, "seconds": round(time.perf_counter() - start, 1)}


def estimate(runs: list[Run], out: Path, probe_iterations: int = 5, log: Any = print) -> dict[str, Any]:
    """Seconds the unfinished runs will take: each distinct (task, method, size) is timed for a few steps
    (through the CLI, into OUT/estimate/), and its seconds per iteration times the planned iterations summed."""
    from aseqdip.cli import main as aseqdip_main

    per_it: dict[tuple[str, ...], float] = {}
    total = 0.0
    rows = []
    for run in runs:
        if (run_dir(out, run) / "metrics.json").exists():
            continue
        argv = list(run.argv)
        its = int(argv[argv.index("--iterations") + 1]) if "--iterations" in argv else 1
        size = argv[argv.index("--size") + 1] if "--size" in argv else "native"
        key = (run.task, run.method, run.item.kind, size)
        if key not in per_it:
            probe = list(argv)
            if "--iterations" in probe:
                probe[probe.index("--iterations") + 1] = str(probe_iterations)
            folder = out / "estimate" / "-".join(key)
            if not (folder / "metrics.json").exists():
                aseqdip_main([*probe, "--out", str(folder)])
            m = json.loads((folder / "metrics.json").read_text())
            per_it[key] = m["seconds_per_iteration"] if "--iterations" in argv else m["seconds"]
            rows.append({"task": run.task, "method": run.method, "size": size, "seconds_per_iteration": per_it[key]})
            unit = "ms/it" if "--iterations" in argv else "ms/run"
            log(f"  {run.task:8s} {run.method:11s} {1000 * per_it[key]:8.1f} {unit}")
        total += per_it[key] * its + 0.5  # + writing PNGs, plots, metrics
    total += 15.0 if per_it else 0.0  # start-up and the report
    return {"seconds": round(total, 1), "probes": rows, "probe_iterations": probe_iterations}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.paper", description=__doc__.splitlines()[0])
    p.add_argument("--profile", choices=tuple(PROFILES), default="quick",
                   help="quick (< 15 min on 2 CPU cores, not the paper's settings), cpu (128 px, 4000 "
                        "iterations, hours), paper (the paper's sizes, a GPU job); tiny is for the tests")
    p.add_argument("--out", required=True, help="output folder (resumable: finished runs are kept)")
    p.add_argument("--only", action="append", choices=EXPERIMENTS,
                   help="run only this experiment (repeatable; default all)")
    p.add_argument("--tasks", default=",".join(TASK_ORDER), help=f"comma list of tasks (default {','.join(TASK_ORDER)})")
    p.add_argument("--seeds", type=int, default=1, help="seeds per image, 0..SEEDS-1 (default 1)")
    p.add_argument("--images", type=int, default=None, help="images per task (default: the profile's)")
    p.add_argument("--extra-baselines", action="store_true",
                   help="Table 2 also runs Table 1's other data-independent DIP baselines (ES-DIP, TV-DIP, SGLD ...)")
    p.add_argument("--data-images", default=None, help="folder of PNG/JPEG/TIFF/NPY images for denoise/inpaint/deblur")
    p.add_argument("--data-mri", default=None, help="folder of fastMRI multi-coil .h5 files or MR DICOM slices")
    p.add_argument("--data-ct", default=None, help="folder of CT DICOM slices")
    p.add_argument("--device", default="auto", help="passed to every run (default auto: cuda if available)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--estimate", action="store_true",
                   help="time a few steps of each kind of run and print the estimated total; run nothing else")
    p.add_argument("--report-only", action="store_true", help="rebuild tables, figures and report.md only")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    import dataclasses

    args = parse_args(argv)
    try:
        if args.threads is not None:
            import torch

            torch.set_num_threads(args.threads)
        profile = PROFILES[args.profile]
        if args.images is not None:
            profile = dataclasses.replace(profile, images=args.images, fig1_images=min(args.images,
                                                                                       profile.fig1_images))
        tasks = tuple(t for t in args.tasks.split(",") if t)
        unknown = set(tasks) - set(TASK_ORDER)
        if unknown:
            raise UserInputError(f"--tasks: unknown {', '.join(sorted(unknown))}; choose from {', '.join(TASK_ORDER)}")
        if args.seeds < 1:
            raise UserInputError("--seeds must be at least 1")
        out = Path(args.out)
        folders = {"natural": args.data_images, "mri": args.data_mri, "ct": args.data_ct}
        count = max(profile.images, profile.fig1_images)
        data = data_lists(out / "data", folders, count)
        runs = plan(profile, data, experiments=tuple(args.only or EXPERIMENTS), tasks=tasks, seeds=args.seeds,
                    extra_baselines=args.extra_baselines, device=args.device)
        print(f"{profile.label}\n{len(runs)} runs planned -> {out}", flush=True)
        if args.estimate:
            est = estimate(runs, out)
            print(f"estimated: {est['seconds'] / 60:.1f} min for the unfinished runs "
                  f"(from {est['probe_iterations']}-step probes)")
            return 0
        status = {"ran": 0, "skipped": 0, "failed": [], "seconds": 0.0}
        if not args.report_only:
            status = execute(runs, out, log=lambda s: print(s, flush=True))
        from .paper_report import write_report

        write_report(out, profile, runs, data, folders, status, argv=["python", "-m", "benchmarks.paper",
                                                                               *(sys.argv[1:] if argv is None else argv)])
        print(f"ran {status['ran']}, skipped {status['skipped']} finished, {len(status['failed'])} failed; "
              f"report: {out / 'report.md'}")
        return 1 if status["failed"] else 0
    except UserInputError as exc:
        print(f"benchmarks.paper: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
