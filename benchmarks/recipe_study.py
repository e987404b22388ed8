"""The recipe ablation (issue 37): each difference between aSeqDIP's paper and its authors' scripts, alone and whole.

    .venv/bin/python -m benchmarks.recipe_study plan                   # the rows, in the order they run
    .venv/bin/python -m benchmarks.recipe_study run --jobs 2 --commit  # work through the queue (resumable)
    .venv/bin/python -m benchmarks.recipe_study status                 # what is done, running and left

Each row is one ``aseqdip run`` of aSeqDIP with one *variant* (a few flags: one option of
``aseqdip.recipes``/``methods.aseqdip`` alone, or ``--recipe authors`` whole), of one of two kinds:

* ``fixed``: ``--stop none``, the variant's own budget (4000 steps unless the variant sets another), with
  the discrepancy rule and the residual observed (``--observe``), so the oracle best is on record too;
* ``auto``: the default ``--stop auto``: what a user gets.

Under ``auto`` the published methods (aSeqDIP as written, Vanilla DIP, Self-Guided DIP) run here too, on
the same machine as the variants: the same seed drifts to another trajectory on another CPU, so the
variants are compared with these. Their fixed runs come from the auto study
(``benchmarks/results/auto-study``: the same images, seed, size and commands), which
``benchmarks.recipe_table`` shows beside them; settings the auto study never ran (random pixel masks) get
their fixed runs here.

Images: the auto study's (the first three of each group of ``benchmarks/paper_data.py``), which the recipe
options were never chosen on: the options come from the authors' scripts, not from measurements here.
The queue runs the cheap and most telling rows first: auto rows before fixed ones, box inpainting and
noise-free MRI (where aSeqDIP lost to Vanilla DIP) before the other tasks. Every option runs alone under
``auto`` (the default a user gets); fixed-budget rows, 4000-6000 steps each, only for the choices that moved
the returned image under auto, so the whole queue takes about 12 hours of two cores. Resumable at any moment, like the
auto study (its lock, checkpoint and commit machinery): a row is done when its slim metrics.json is in
``--results``.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.auto_study import GROUP, ROOT, done, git_commit, queue_arguments, run_queue, selected, stored_row
from benchmarks.paper_data import builtin_items

RESULTS = ROOT / "benchmarks" / "results" / "recipe-study"
RUNS = Path("/work/runs/recipe-study") if Path("/work").is_dir() else ROOT / "runs" / "recipe-study"
CEILING = 4000
IMAGES = 3
OBSERVE = "discrepancy,residual"

# variants per task family: name -> flags (each one difference alone, then the authors' recipe whole)
INPAINT = {
    "authors": ("--recipe", "authors"),
    "fill0.4": ("--hole-fill", "0.4"),
    "composite": ("--consistent-output",),
    "lr3e-4": ("--lr", "3e-4"),
    "authors-4000": ("--recipe", "authors", "--iterations", "4000"),
    # not the authors': what else decides a hole (docs/fidelity.md): no autoencoding term, DIP's noise input,
    # and the classical smooth inpainting of the hole as z_0 (the role FBP plays for CT)
    "lam0": ("--lam", "0"),
    "random-z0": ("--z0", "random"),
    "biharmonic": ("--hole-fill", "biharmonic"),
    # the biharmonic z_0 carried through the first input update: 200 steps fitting f(z_0) to z_0 first
    "biharmonic-warmup": ("--hole-fill", "biharmonic", "--warmup", "200"),
    # the same stopped after its first input update (K = 1, 202 steps): the curves of the runs above are best at
    # z_0 or z_1 on all but one study image, and fall from there (docs/fidelity.md, "Inpainting: stop at the first
    # input update")
    "biharmonic-warmup-k1": ("--hole-fill", "biharmonic", "--warmup", "200", "--iterations", "202"),
}
MRI = {
    "authors": ("--recipe", "authors"),
    "dc": ("--dc-update",),
    "lam0": ("--lam", "0"),
    "norm": ("--loss-form", "norm"),
    "scale": ("--match-scale",),
    "consistent": ("--consistent-output",),
    # the library's MRI recipe: under auto, a trial of the authors' recipe (its discrepancy principle confirming the
    # noise level), kept on noise-free k-space, else the paper's recipe (aseqdip.recipes.TRIALS)
    "library": ("--recipe", "library"),
}
AUTHORS_ONLY = {"authors": ("--recipe", "authors")}
# deblurring's script runs 10000 steps: capped at the paper's 4000 here (the variant's name says so)
DEBLUR = {"authors-4000": ("--recipe", "authors", "--iterations", "4000")}
# a setting with no auto-study rows: the published methods' fixed runs are made here too
BASELINES = {"paper": ()}
BASELINE_METHODS = ("aseqdip", "dip", "selfguided")  # run with the paper's settings ("paper" variant)

# fixed-budget runs cost 4000-6000 steps each, so only the choices that moved the returned image under auto
# (the learning rate, the whole recipe) or that change the trajectory most (MRI's data-consistent update)
INPAINT_FIXED = {k: INPAINT[k] for k in ("authors", "lr3e-4")}
MRI_FIXED = {k: MRI[k] for k in ("authors",)}
CT_AUTO = {**BASELINES, **AUTHORS_ONLY}  # noise-free CT runs to the ceiling under auto: no fixed rows

# blocks in the order they run: (task, setting, task flags, size, variants, kinds). Sized for about 12 hours
# of two cores on the 2-core AMD EPYC (auto rows 2-10 min, fixed 15-40 min at 64 px, x4 at 128 px).
BLOCKS: list[tuple[str, str, tuple[str, ...], int, dict[str, tuple[str, ...]], tuple[str, ...]]] = [
    ("inpaint", "hiar0.25", ("--hiar", "0.25"), 64, INPAINT, ("auto",)),
    ("mri", "4x", ("--acceleration", "4"), 64, MRI, ("auto",)),
    ("mri", "8x", ("--acceleration", "8"), 64, MRI, ("auto",)),
    # before the other blocks: whether --lam 0 (best on noise-free MRI) holds with k-space noise decides MRI's default
    ("mri", "4x-sigma5", ("--acceleration", "4", "--sigma", "5"), 64, MRI, ("auto",)),
    ("inpaint", "hiar0.1", ("--hiar", "0.1"), 64, INPAINT, ("auto",)),
    ("inpaint", "hiar0.25", ("--hiar", "0.25"), 64, INPAINT_FIXED, ("fixed",)),
    ("mri", "4x", ("--acceleration", "4"), 64, MRI_FIXED, ("fixed",)),
    ("inpaint", "hiar0.1", ("--hiar", "0.1"), 64, INPAINT_FIXED, ("fixed",)),
    ("mri", "8x", ("--acceleration", "8"), 64, MRI_FIXED, ("fixed",)),
    ("ct", "18views", ("--views", "18"), 64, CT_AUTO, ("auto",)),
    ("deblur", "noise0.05", ("--noise", "0.05"), 64, DEBLUR, ("auto", "fixed")),
    ("inpaint", "random0.5", ("--mask", "random", "--missing", "0.5"), 64, {**BASELINES, **INPAINT}, ("auto",)),
    ("inpaint", "random0.5", ("--mask", "random", "--missing", "0.5"), 64, {**BASELINES, **INPAINT_FIXED},
     ("fixed",)),
    ("mri", "4x-sigma5", ("--acceleration", "4", "--sigma", "5"), 64, MRI_FIXED, ("fixed",)),
    # 128 px: the authors' recipe and the library's (the inpainting default), the costliest rows (about 1 s a step)
    ("inpaint", "hiar0.25", ("--hiar", "0.25"), 128, {**AUTHORS_ONLY, "biharmonic-warmup": INPAINT["biharmonic-warmup"]},
     ("auto", "fixed")),
    ("inpaint", "hiar0.25", ("--hiar", "0.25"), 128, {"biharmonic-warmup-k1": INPAINT["biharmonic-warmup-k1"]}, ("auto",)),
    # 128 px, the other settings, each with its default recipe beside the published methods (auto only): random pixel
    # masks are cheap there (a few hundred steps), box HIAR 0.1 costs the library's 1500-2500 steps, and MRI the
    # authors' 6000 (about 80 min a row on one core: the last rows of the queue)
    ("inpaint", "random0.5", ("--mask", "random", "--missing", "0.5"), 128,
     {**AUTHORS_ONLY, "biharmonic-warmup-k1": INPAINT["biharmonic-warmup-k1"]}, ("auto",)),
    ("inpaint", "hiar0.1", ("--hiar", "0.1"), 128,
     {k: INPAINT[k] for k in ("biharmonic-warmup", "biharmonic-warmup-k1")}, ("auto",)),
    ("mri", "4x", ("--acceleration", "4"), 128, {"library": MRI["library"]}, ("auto",)),
    ("mri", "4x-sigma5", ("--acceleration", "4", "--sigma", "5"), 128, {"library": MRI["library"]}, ("auto",)),
    ("mri", "8x", ("--acceleration", "8"), 128, {"library": MRI["library"]}, ("auto",)),
]


# the study variant that measured each recipe (the library's inpainting recipe is the biharmonic-warmup-k1 variant:
# the same three options, aseqdip.recipes.LIBRARY; its longer form, biharmonic-warmup, ran under auto's stop)
RECIPE_VARIANT = {"paper": "paper", "authors": "authors", "library": "biharmonic-warmup-k1"}
RECIPE_VARIANT_OF_TASK = {("mri", "library"): "library"}  # where a task's library recipe has a variant of its own


def recipe_variant(task: str, recipe: str) -> str:
    """The study variant that measured ``recipe`` on ``task``."""
    return RECIPE_VARIANT_OF_TASK.get((task, recipe), RECIPE_VARIANT[recipe])


# the inpainting choices checked on images no choice was made on (auto_holdout's, never in a study)
HOLDOUT_VARIANTS = {k: INPAINT[k] for k in ("authors", "biharmonic-warmup", "biharmonic-warmup-k1")}
# (its own setting name, so that its lines never mix with the study images')
HOLDOUT_BLOCKS = [("inpaint", "hiar0.25-heldout", ("--hiar", "0.25"), 64, HOLDOUT_VARIANTS, ("auto",)),
                  # MRI's library recipe (the trial) on the one real MR slice of the bundle no study uses
                  ("mri", "4x-heldout", ("--acceleration", "4"), 64, {"library": MRI["library"]}, ("auto",)),
                  ("mri", "4x-sigma5-heldout", ("--acceleration", "4", "--sigma", "5"), 64,
                   {"library": MRI["library"]}, ("auto",)),
                  # random pixel masks: the authors' recipe led the study's images under auto (27.05 dB against the
                  # library's 25.39 and Vanilla DIP's 26.25), with the learning rate alone second (26.70)
                  ("inpaint", "random0.5-heldout", ("--mask", "random", "--missing", "0.5"), 64,
                   {**HOLDOUT_VARIANTS, "lr3e-4": INPAINT["lr3e-4"]}, ("auto",))]
HELD_OUT_MRI = ("MR_small",)  # the fourth of paper_data.MRI: the studies take the first three

# Toward the paper's sizes on this CPU (no GPU lent so far): its photographs are 512 px; at 256 px the skip network
# takes about 2 s a step on one core of the AMD EPYC, so each natural-image task whose default is cheap runs there,
# the default a user gets beside Vanilla DIP, under auto, on the study's images. Last in the queue.
PAPER_SIZE = 256
PAPER_SIZE_BLOCKS = [("denoise", "sigma25", ("--sigma", "25"), {"paper": ()}),
                     ("inpaint", "hiar0.25", ("--hiar", "0.25"), {"biharmonic-warmup-k1": INPAINT["biharmonic-warmup-k1"]}),
                     ("inpaint", "hiar0.1", ("--hiar", "0.1"), {"biharmonic-warmup-k1": INPAINT["biharmonic-warmup-k1"]})]


@dataclass(frozen=True)
class Row:
    task: str
    setting: str
    options: tuple[str, ...]
    image: str
    spec: str
    size: int
    method: str
    variant: str
    flags: tuple[str, ...]
    kind: str

    @property
    def ident(self) -> str:
        return f"{self.task}-{self.setting}-{self.size}px-{self.image}-{self.method}-{self.variant}-{self.kind}"

    def problem(self) -> Any:
        """The row's measurement simulated again from its task options, image and seed 0 (no training)."""
        from aseqdip.cli import options_from_argv
        from aseqdip.tasks import TASKS

        options = options_from_argv(["run", "--task", self.task, "--image", self.spec, "--size", str(self.size),
                                     *self.options, "--out", "unused"])
        task = TASKS[self.task].from_options(**options.task_options)
        return task.simulate(task.load(self.spec, size=self.size), seed=0)

    def command(self, out: Path) -> list[str]:
        mode = (["--stop", "none", "--observe", OBSERVE, "--sigma-from", "estimate"] if self.kind == "fixed"
                else ["--stop", "auto"])
        budget = [] if "--iterations" in self.flags or "--recipe" in self.flags else ["--iterations", str(CEILING)]
        # every variant but the authors' whole recipe is the paper's recipe plus its flags, whatever the default
        recipe = [] if self.method != "aseqdip" or "--recipe" in self.flags else ["--recipe", "paper"]
        return [str(ROOT / ".venv" / "bin" / "aseqdip"), "run", "--task", self.task, "--image", self.spec,
                "--size", str(self.size), *self.options, "--method", self.method, *budget, *recipe, *self.flags,
                "--seed", "0", "--precision", "fp32", *mode, "--track-every", "1", "--checkpoint-every", "500",
                "--resume", "--no-progress", "--out", str(out)]


def plan() -> list[Row]:
    """Every row, block by block (see :data:`BLOCKS`), image by image inside a block."""
    rows = []
    cache = RUNS / "_data"
    items = {group: builtin_items(group, cache)[:IMAGES] for group in set(GROUP.values())}
    for task, setting, options, size, variants, kinds in BLOCKS:
        for kind in kinds:
            for item in items[GROUP[task]]:
                # under auto, the published methods on this machine first: the same CPU as the variants (a run's
                # trajectory drifts across CPUs), and their images for the figure; fixed runs of them only
                # where the auto study has none (the variants that say "paper")
                baselines = BASELINE_METHODS if kind == "auto" or "paper" in variants else ()
                for method in baselines:
                    if method == "selfguided" and (kind == "fixed" or item is not items[GROUP[task]][0]):
                        continue  # the slowest per step: under auto, on the figure's image only
                    rows.append(Row(task, setting, options, item.ident, item.spec, size, method, "paper", (), kind))
                for variant, flags in variants.items():
                    if variant != "paper":
                        rows.append(Row(task, setting, options, item.ident, item.spec, size, "aseqdip", variant,
                                        flags, kind))
    return rows + holdout_rows(cache) + paper_size_rows(items["natural"])


def holdout_rows(cache: Path) -> list[Row]:
    """The held-out check, after everything else: aSeqDIP as written, Vanilla DIP and the inpainting choices
    on ``benchmarks.auto_holdout``'s natural images (never in a study), under auto."""
    from benchmarks.auto_holdout import IMAGES as HELD_OUT

    named = {group: {item.ident: item for item in builtin_items(group, cache)} for group in ("natural", "mri")}
    held_out = {"natural": HELD_OUT["natural"], "mri": HELD_OUT_MRI}
    rows = []
    for task, setting, options, size, variants, kinds in HOLDOUT_BLOCKS:
        for kind in kinds:
            for item in (named[GROUP[task]][name] for name in held_out[GROUP[task]]):
                for method, variant, flags in [("aseqdip", "paper", ()), ("dip", "paper", ()),
                                               *(("aseqdip", v, f) for v, f in variants.items())]:
                    rows.append(Row(task, setting, options, item.ident, item.spec, size, method, variant, flags, kind))
    return rows


def paper_size_rows(images: list[Any]) -> list[Row]:
    """:data:`PAPER_SIZE_BLOCKS`: aSeqDIP's default on each study image, then Vanilla DIP's, under auto."""
    return [Row(task, setting, options, item.ident, item.spec, PAPER_SIZE, method, variant, flags, "auto")
            for task, setting, options, variants in PAPER_SIZE_BLOCKS for item in images
            for method, variant, flags in [*(("aseqdip", v, f) for v, f in variants.items()), ("dip", "paper", ())]]


def run_row(row: Row, runs: Path, results: Path, commit: bool) -> bool:
    """Run one row (resuming its checkpoint); store its slim metrics.json in ``results``; True when done."""
    stored = stored_row(row, runs, results, {"task": row.task, "setting": row.setting, "image": row.image,
                                             "size": row.size, "method": row.method, "variant": row.variant,
                                             "kind": row.kind})
    if stored is None:
        return False
    metrics, target = stored
    picture = target.parent / "recon.png"  # a few KB: the Figure 5 analogue is drawn from these
    shutil.copyfile(runs / row.ident / "recon.png", picture)
    from benchmarks.recipe_table import write_table  # here: recipe_table imports this module

    table = write_table(results)
    if commit:
        git_commit([target, picture, table],
                   f"recipe study: {row.ident} ({metrics['psnr']:.2f} dB, {metrics['iterations']} steps)")
    return True


def status(rows: list[Row], runs: Path, results: Path) -> str:
    finished = [r for r in rows if done(r, results)]
    running = [r for r in rows if not done(r, results) and (runs / f"{r.ident}.lock").exists()]
    lines = [f"{len(finished)} of {len(rows)} rows done, {len(running)} running, {len(rows) - len(finished)} left"]
    lines += [f"  running: {r.ident}" for r in running]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = queue_arguments("recipe_study", __doc__, RUNS, RESULTS, argv)
    rows = selected(plan(), args.only)
    if args.action == "plan":
        print("\n".join(r.ident for r in rows))
    elif args.action == "run":
        run_queue(args, "benchmarks.recipe_study", rows, run_row)
    print(status(rows, args.runs, args.results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
