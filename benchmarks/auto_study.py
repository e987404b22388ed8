"""The auto-mode study (issue 18): which rule and ramp return the image at its best, without the truth, in few steps.

    .venv/bin/python -m benchmarks.auto_study plan                  # the rows and the hours they should take
    .venv/bin/python -m benchmarks.auto_study run --jobs 2 --commit # work through the queue (resumable)
    .venv/bin/python -m benchmarks.auto_study status                # what is done, running and left

Each row is one ``aseqdip run`` command (recorded in its metrics.json), of one of two kinds:

* ``paper``: the published algorithm, ``--stop none`` to the 4000-step ceiling, with the rules observing
  (``--observe``): one run gives the paper's fixed-budget image, the oracle best along the run, and the
  step and image every observed rule would have chosen with the *estimated* noise level;
* ``auto``: the default (``--stop auto``), which stops where its rule decides: its returned image, steps
  and seconds are what a user gets. Only aSeqDIP's are run: Vanilla DIP's auto (the discrepancy
  principle on the estimate, no ramp) is read off its ``paper`` row's observer (``derived``); on CT
  without a photon count, where auto takes the data as noise-free, off its residual curve (the smallest
  residual over the run, ``auto_table.smallest_residual``).

Data: the first three images of each group in ``benchmarks/paper_data.py`` (scikit-image photographs,
pydicom-data MR and CT slices). The ramp and the rule were chosen on other images (scikit-image's rocket
and immunohistochemistry, pydicom's CT_small and MR_small), never on these.

The queue is resumable at any moment: a row whose metrics.json is in ``--results`` is done; a row being
run holds a lock file (a dead process's lock is taken over); each run checkpoints every 500 steps and
resumes there. ``--commit`` commits each finished row's slim metrics.json as it lands.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.paper_data import builtin_items

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "auto-study"
RUNS = Path("/work/runs/auto-study") if Path("/work").is_dir() else ROOT / "runs" / "auto-study"
CEILING = 4000
IMAGES_PER_TASK = 3
# seconds per step, one thread, measured on the 2-core AMD EPYC (64 px; x4 at 128 px): for the plan before
# any row has finished; after that the finished rows' own medians (measure)
STEP_SECONDS = {"shallow": 0.07, "skip": 0.07, "medium": 0.13}

# (task, setting name, options, network kind, sizes): both settings at 64 px, the paper's main one at 128 px
# (all of them at 128 px would take ~28 h of one core, over the ~12 h this study may take)
SETTINGS: list[tuple[str, str, list[str], str, tuple[int, ...]]] = [
    ("denoise", "sigma15", ["--sigma", "15"], "shallow", (64,)),
    ("denoise", "sigma25", ["--sigma", "25"], "shallow", (64, 128)),
    ("inpaint", "hiar0.1", ["--hiar", "0.1"], "skip", (64,)),
    ("inpaint", "hiar0.25", ["--hiar", "0.25"], "skip", (64, 128)),
    ("deblur", "noise0.05", ["--noise", "0.05"], "shallow", (64, 128)),
    ("deblur", "noise0.1", ["--noise", "0.1"], "shallow", (64,)),
    ("mri", "4x", ["--acceleration", "4"], "medium", (64,)),
    ("mri", "8x", ["--acceleration", "8"], "medium", (64,)),
    ("mri", "4x-sigma5", ["--acceleration", "4", "--sigma", "5"], "medium", (64,)),
    ("ct", "18views", ["--views", "18"], "medium", (64,)),
    ("ct", "30views", ["--views", "30"], "medium", (64,)),
    ("ct", "18views-1e5photons", ["--views", "18", "--photons", "1e5"], "medium", (64,)),
]
GROUP = {"denoise": "natural", "inpaint": "natural", "deblur": "natural", "mri": "mri", "ct": "ct"}
OBSERVE = "discrepancy,discrepancy_ema,wmv,residual"
METHODS = ("aseqdip", "dip")
KINDS = ("paper", "auto")


@dataclass(frozen=True)
class Row:
    task: str
    setting: str
    options: tuple[str, ...]
    image: str
    spec: str
    size: int
    method: str
    kind: str
    network: str

    @property
    def ident(self) -> str:
        return f"{self.task}-{self.setting}-{self.size}px-{self.image}-{self.method}-{self.kind}"

    def command(self, out: Path) -> list[str]:
        mode = (["--stop", "none", "--observe", OBSERVE, "--sigma-from", "estimate"] if self.kind == "paper"
                else ["--stop", "auto"])
        recipe = ["--recipe", "paper"] if self.method == "aseqdip" else []  # the study measured the paper's recipe
        return [str(ROOT / ".venv" / "bin" / "aseqdip"), "run", "--task", self.task, "--image", self.spec,
                "--size", str(self.size), *self.options, "--method", self.method, *recipe, "--iterations", str(CEILING),
                "--seed", "0", "--precision", "fp32", *mode, "--track-every", "1", "--checkpoint-every", "500", "--resume",
                "--no-progress", "--out", str(out)]

    def estimated_seconds(self, measured: Measured | None = None) -> float:
        """Seconds this row should take: from the rows already finished on this machine where there are
        any (``measured``), else from :data:`STEP_SECONDS` and a guess at auto's steps."""
        measured = measured or Measured({}, {})
        per_step = measured.step_seconds.get((self.network, self.size, self.kind))
        if per_step is None:
            per_step = STEP_SECONDS[self.network] * (self.size / 64) ** 2 * (1.3 if self.kind == "paper" else 1.0)
        if self.kind == "paper":
            return per_step * CEILING
        steps = measured.auto_steps.get((self.task, self.setting, self.size))
        if steps is None:
            # auto stops early where there is noise to stop at (a guess: a sixth); noise-free MRI and CT data
            # leave no noise level to reach, and auto runs to the ceiling there
            noise_free = self.task in ("mri", "ct") and not {"--sigma", "--photons"} & set(self.options)
            steps = CEILING if noise_free else CEILING / 6
        return per_step * steps


@dataclass(frozen=True)
class Measured:
    """What finished rows measured: median seconds per step by (network, size, kind) and median steps of
    auto by (task, setting, size); the plan's constants were measured on one CPU, and the machine changes."""

    step_seconds: dict[tuple[str, int, str], float]
    auto_steps: dict[tuple[str, str, int], float]


def measure(rows: list[Row], results: Path) -> Measured:
    """Medians over the finished rows in ``results`` (a resumed run's seconds per step is its last stretch's)."""
    seconds: dict[tuple[str, int, str], list[float]] = {}
    steps: dict[tuple[str, str, int], list[float]] = {}
    for row in rows:
        path = results / row.ident / "metrics.json"
        if not path.is_file():
            continue
        metrics = json.loads(path.read_text())
        if metrics.get("seconds_per_iteration"):
            seconds.setdefault((row.network, row.size, row.kind), []).append(float(metrics["seconds_per_iteration"]))
        if row.kind == "auto":
            steps.setdefault((row.task, row.setting, row.size), []).append(float(metrics["iterations"]))
    return Measured({k: statistics.median(v) for k, v in seconds.items()},
                    {k: statistics.median(v) for k, v in steps.items()})


def derived(method: str, kind: str) -> bool:
    """True for rows read off another row instead of run: Vanilla DIP's ``auto`` is the discrepancy
    principle on the estimated noise level with no ramp, which its ``paper`` row already observes step by
    step on the same seed (tests/test_observe.py checks that an observed rule stops where the same rule
    stopping the run does). aSeqDIP's ``auto`` adds the ramp, a different trajectory, so it is run."""
    return method == "dip" and kind == "auto"


def plan() -> list[Row]:
    """Every row that is run: 64 px before 128 px, each task's first image before its second, and for
    each image the ``paper`` rows before the ``auto`` ones, so that a partial study gives whole table
    lines (every task and setting, both kinds) for its first images."""
    rows = []
    cache = RUNS / "_data"
    items = {group: builtin_items(group, cache)[:IMAGES_PER_TASK] for group in set(GROUP.values())}
    for size in (64, 128):
        for index in range(IMAGES_PER_TASK):
            for kind in KINDS:
                for task, setting, options, network, sizes in SETTINGS:
                    if size not in sizes:
                        continue
                    item = items[GROUP[task]][index]
                    for method in METHODS:
                        if not derived(method, kind):
                            rows.append(Row(task, setting, tuple(options), item.ident, item.spec, size, method,
                                            kind, network))
    return rows


def done(row: Row, results: Path) -> bool:
    return (results / row.ident / "metrics.json").is_file()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def claim(row: Row, runs: Path) -> bool:
    """Take the row's lock (a file holding our pid); a lock of a dead process is taken over."""
    lock = runs / f"{row.ident}.lock"
    runs.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                pid = int(lock.read_text() or 0)
            except (OSError, ValueError):
                pid = 0
            if pid and _alive(pid):
                return False
            lock.unlink(missing_ok=True)
            continue
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        return True
    return False


CURVES = ("psnr", "residual")  # kept per step: the oracle curve, and the residual any discrepancy rule reads


def slim(metrics: dict[str, Any]) -> dict[str, Any]:
    """metrics.json with only the per-step oracle PSNR and residual curves, to 5 significant digits.

    With both, the discrepancy principle can be evaluated afterwards for any noise level and tau (the
    first step, once armed, where the residual falls to tau sigma^2) and scored by the PSNR there.
    """
    out = {k: v for k, v in metrics.items() if k != "history"}
    history = metrics.get("history", {})
    out["history"] = {}
    for name in CURVES:
        if name in history:
            out["history"][name] = [float(f"{v:.5g}") for v in history[name]]
            out["history"][f"{name}_iteration"] = history[f"{name}_iteration"]
    return out


def git_commit(paths: list[Path], message: str) -> None:
    for attempt in range(10):
        add = subprocess.run(["git", "-C", str(ROOT), "add", "--", *map(str, paths)], capture_output=True, text=True)
        if add.returncode == 0:
            com = subprocess.run(["git", "-C", str(ROOT), "commit", "-q", "-m", message, "--", *map(str, paths)],
                                 capture_output=True, text=True)
            if com.returncode == 0:
                return
        time.sleep(2 + attempt)
    print(f"auto_study: could not commit {message}", file=sys.stderr)


def run_logged(row: Any, runs: Path) -> bool:
    """Run a row's command on one thread (resuming its checkpoint) unless its folder is finished, its output
    appended to ``runs/IDENT.log``; True when ``runs/IDENT/metrics.json`` is there."""
    out = runs / row.ident
    if not (out / "metrics.json").is_file():
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        log = runs / f"{row.ident}.log"
        with open(log, "a") as fh:
            code = subprocess.run(row.command(out), env=env, stdout=fh, stderr=subprocess.STDOUT).returncode
        if code != 0:
            print(f"study: {row.ident} failed (exit {code}); see {log}", file=sys.stderr)
            return False
    return True


def stored_row(row: Any, runs: Path, results: Path, study_row: dict[str, Any]) -> tuple[dict[str, Any], Path] | None:
    """Run one row (resuming its checkpoint) and store its slim metrics.json, tagged with ``study_row``, in
    ``results``: (the run's metrics, the stored file), or None when the run failed."""
    if not run_logged(row, runs):
        return None
    metrics = json.loads((runs / row.ident / "metrics.json").read_text())
    metrics["study_row"] = study_row
    target = results / row.ident / "metrics.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(slim(metrics), indent=1))
    return metrics, target


def run_row(row: Row, runs: Path, results: Path, commit: bool) -> bool:
    """Run one row (resuming its checkpoint); store its slim metrics.json in ``results``; True when done."""
    stored = stored_row(row, runs, results, {"task": row.task, "setting": row.setting, "image": row.image,
                                             "size": row.size, "method": row.method, "kind": row.kind})
    if stored is None:
        return False
    metrics, target = stored
    from benchmarks.auto_table import write_table  # here: auto_table imports this module

    table = write_table(results)
    if commit:
        git_commit([target, table], f"auto study: {row.ident} ({metrics['psnr']:.2f} dB, {metrics['iterations']} steps)")
    return True


def work(rows: list[Any], runs: Path, results: Path, commit: bool, deadline: float | None,
         runner: Any = None) -> None:
    """One worker: take the first row in plan order that is neither done nor locked, until none is left or
    time is up. Each row is looked for from the top of the plan, so a row set aside while the study runs
    (its metrics.json moved away) is taken before later ones; a row that failed is not retried.
    ``runner(row, runs, results, commit) -> bool`` runs one row (default :func:`run_row`; other studies
    bring their own)."""
    runner = runner or run_row
    failed: set[str] = set()
    while deadline is None or time.time() <= deadline:
        row = next((r for r in rows if r.ident not in failed and not done(r, results) and claim(r, runs)), None)
        if row is None:
            return
        try:
            started = time.time()
            ok = runner(row, runs, results, commit)
            print(f"auto_study: {row.ident} {'done' if ok else 'FAILED'} in {time.time() - started:.0f} s", flush=True)
            if not ok:
                failed.add(row.ident)
        finally:
            (runs / f"{row.ident}.lock").unlink(missing_ok=True)


def run_workers(module: str, jobs: int, options: list[str]) -> None:
    """Run ``jobs`` single-worker queues (``python -m MODULE run --jobs 1 OPTIONS``) side by side and wait
    for them; the row locks keep them on different rows."""
    workers = [subprocess.Popen([sys.executable, "-m", module, "run", "--jobs", "1", *options], cwd=ROOT)
               for _ in range(jobs)]
    for w in workers:
        w.wait()


def status(rows: list[Row], runs: Path, results: Path) -> str:
    finished = [r for r in rows if done(r, results)]
    running = [r for r in rows if not done(r, results) and (runs / f"{r.ident}.lock").exists()]
    left = [r for r in rows if not done(r, results)]
    measured = measure(plan(), results)
    hours = sum(r.estimated_seconds(measured) for r in left) / 3600
    lines = [f"{len(finished)} of {len(rows)} rows done, {len(running)} running, {len(left)} left "
             f"(about {hours:.1f} h of one core; {hours / 2:.1f} h with two runs at a time)"]
    lines += [f"  running: {r.ident}" for r in running]
    return "\n".join(lines)


def queue_arguments(prog: str, doc: str, runs: Path, results: Path, argv: list[str] | None) -> argparse.Namespace:
    """The options every study queue takes (``plan``, ``run``, ``status``; where, how many, which rows)."""
    p = argparse.ArgumentParser(prog=prog, description=doc.split("\n")[0])
    p.add_argument("action", choices=("plan", "run", "status"))
    p.add_argument("--runs", type=Path, default=runs, help="where runs write their folders and checkpoints")
    p.add_argument("--results", type=Path, default=results, help="where finished rows' slim metrics.json go")
    p.add_argument("--jobs", type=int, default=2, help="runs at a time (one torch thread each)")
    p.add_argument("--commit", action="store_true", help="commit each finished row")
    p.add_argument("--hours", type=float, default=None, help="take no new row after this many hours")
    p.add_argument("--only", default=None, help="comma-separated substrings a row's id must contain (any of)")
    return p.parse_args(argv)


def selected(rows: list[Any], only: str | None) -> list[Any]:
    """The rows whose id contains one of the comma-separated substrings ``only`` (all rows without it)."""
    return rows if not only else [r for r in rows if any(k in r.ident for k in only.split(","))]


def run_queue(args: argparse.Namespace, module: str, rows: list[Any], runner: Any) -> None:
    """The ``run`` action: this process works the queue (``--jobs 1``) or starts that many workers."""
    if args.jobs <= 1:
        deadline = None if args.hours is None else time.time() + args.hours * 3600
        work(rows, args.runs, args.results, args.commit, deadline, runner=runner)
        return
    run_workers(module, args.jobs, ["--runs", str(args.runs), "--results", str(args.results),
                                    *(["--commit"] if args.commit else []),
                                    *(["--hours", str(args.hours)] if args.hours else []),
                                    *(["--only", args.only] if args.only else [])])


def main(argv: list[str] | None = None) -> int:
    args = queue_arguments("auto_study", __doc__, RUNS, RESULTS, argv)
    rows = selected(plan(), args.only)
    if args.action == "plan":
        measured = measure(plan(), args.results)
        for r in rows:
            print(f"{r.ident:70s} ~{r.estimated_seconds(measured) / 60:5.1f} min")
    elif args.action == "run":
        run_queue(args, "benchmarks.auto_study", rows, run_row)
    print(status(rows, args.runs, args.results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
