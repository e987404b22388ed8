"""Profiles and the list of runs each experiment of the paper needs (no run is executed here).

A run is one ``aseqdip run`` (or ``aseqdip reconstruct`` for a fastMRI file) with its own output folder
``runs/<experiment>/<run id>``. Figure 1's runs also carry the noise level of DIP's given input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .paper_data import TASK_GROUP, Item

EXPERIMENTS = ("table2", "fig4", "lambda", "nk", "fig1")
TASK_ORDER = ("mri", "ct", "denoise", "inpaint", "deblur")


@dataclass(frozen=True)
class Profile:
    name: str
    label: str  # printed at the top of the report
    sizes: dict[str, int]  # image side per data group (natural, mri, ct)
    images: int  # images per task
    iterations: int  # the budget of every DIP-family run in Table 2 and the N/K ablation (paper: 4000)
    curve_iterations: int  # Figure 4 (paper: 2x the budget)
    lambda_iterations: int  # the lambda ablation (paper: 10000, K = 5000, N = 2)
    fig1_iterations: int
    fig1_sigmas: tuple[float, ...]
    fig1_images: int  # paper: 8 MRI scans
    denoise_sigmas: tuple[int, ...]
    track_every: int


def _profile(name: str, label: str, size: int | dict[str, int], images: int, iterations: int, **kw: Any) -> Profile:
    sizes = size if isinstance(size, dict) else {"natural": size, "mri": size, "ct": size}
    defaults = dict(curve_iterations=2 * iterations, lambda_iterations=2 * iterations, fig1_iterations=iterations,
                    fig1_sigmas=(0.05, 0.1, 0.2, 0.5, 1.0), fig1_images=images, denoise_sigmas=(15, 30),
                    track_every=10)
    defaults.update(kw)
    return Profile(name=name, label=label, sizes=sizes, images=images, iterations=iterations, **defaults)


PROFILES = {
    "tiny": _profile("tiny", "tiny: a smoke test of the benchmark's machinery (tests only), NOT the paper's settings",
                     32, 1, 20, fig1_sigmas=(0.1, 1.0), track_every=5),
    # quick: sized from measured ms/iteration on a shared 2-core EPYC (benchmarks.paper --estimate), < 15 min
    "quick": _profile("quick", "quick: NOT the paper's settings (32x32 images, 1 image per task, 60 iterations "
                               "instead of 4000); it checks the pipeline end to end, its numbers say little",
                      32, 1, 60, lambda_iterations=60, fig1_sigmas=(0.1, 1.0)),
    "cpu": _profile("cpu", "cpu: 128x128 images (paper: 320 MRI, 512 CT and natural), 3 images per task "
                           "(paper: 20), the paper's 4000 iterations",
                    128, 3, 4000, fig1_iterations=2000),
    "paper": _profile("paper", "paper: the paper's sizes (320x320 MRI, 512x512 CT and natural images) and "
                               "iterations, up to 20 images per task where the packages hold them (a GPU job)",
                      {"natural": 512, "mri": 320, "ct": 512}, 20, 4000, lambda_iterations=10000,
                      fig1_images=8, denoise_sigmas=(15, 25, 30)),
}


def task_settings(task: str, profile: Profile) -> list[tuple[str, list[str]]]:
    """The paper's settings of a task (Table 1) as (label, CLI options); the first is 'setting 1'."""
    if task == "mri":
        return [("4x", ["--acceleration", "4"]), ("8x", ["--acceleration", "8"])]
    if task == "ct":
        return [("18 views", ["--views", "18"]), ("30 views", ["--views", "30"])]
    if task == "denoise":
        return [(f"sigma {s}", ["--sigma", str(s)]) for s in profile.denoise_sigmas]
    if task == "inpaint":
        return [("HIAR 0.1", ["--hiar", "0.1"]), ("HIAR 0.25", ["--hiar", "0.25"])]
    if task == "deblur":  # the paper's BKSE learned blur needs weights we do not ship: the task's default stands in
        return [("non-linear", ["--blur", "nonlinear"])]
    raise ValueError(task)


CORE_METHODS = ("aseqdip", "dip", "selfguided")
CLASSICAL = {"mri": ("cs",), "ct": ("fbp",), "inpaint": ("biharmonic",)}
# Table 1's other data-independent DIP baselines (run with --extra-baselines)
EXTRA_BASELINES = {"mri": ("esdip", "tvdip"), "ct": (), "denoise": ("esdip", "tvdip", "rethinking", "sgld"),
                   "inpaint": ("esdip", "sgld", "tvdip"), "deblur": ("sgld",)}
NO_ITERATIONS_OPTION = ("fbp", "cs", "biharmonic")  # closed-form / own solver budget


def table2_methods(task: str, extra: bool) -> tuple[str, ...]:
    return CORE_METHODS + (EXTRA_BASELINES[task] if extra else ()) + CLASSICAL.get(task, ())


@dataclass(frozen=True)
class Run:
    experiment: str
    run_id: str
    task: str
    setting: str
    variant: str  # the method as labelled in tables ("aseqdip", "aseqdip lambda=0", "N=4, K=1000" ...)
    method: str
    item: Item
    seed: int
    argv: tuple[str, ...]  # the aseqdip command line, without --out
    input_sigma: float | None = None  # Figure 1: noise std of DIP's given input
    input_base: str | None = None  # Figure 1: "truth" (x* + noise) or "zero" (noise only)
    extra: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in ".-" else "_" for c in text.replace(" ", ""))


def _argv(task: str, item: Item, size: int, method: str, iterations: int | None, seed: int, track: int,
          options: list[str], device: str) -> tuple[str, ...]:
    if item.kind == "kspace":
        head = ["reconstruct", "--task", task, "--kspace", item.spec]
    else:
        head = ["run", "--task", task, "--image", item.spec, "--size", str(size)]
    its = [] if iterations is None else ["--iterations", str(iterations)]
    its += ["--recipe", "paper"] if method == "aseqdip" else []  # the paper's algorithm, whatever the default
    # --stop none: the paper's experiments run each method's fixed budget, as published (not the auto default)
    return tuple(head + ["--method", method, *its, "--seed", str(seed), "--track-every", str(track),
                         "--device", device, "--no-progress", "--stop", "none", *options])


def plan(profile: Profile, data: dict[str, list[Item]], *, experiments: tuple[str, ...] = EXPERIMENTS,
         tasks: tuple[str, ...] = TASK_ORDER, seeds: int = 1, extra_baselines: bool = False,
         device: str = "auto") -> list[Run]:
    """Every run of the chosen experiments, in a fixed order."""
    runs: list[Run] = []

    def add(exp: str, task: str, setting: tuple[str, list[str]], variant: str, method: str, iterations: int | None,
            options: list[str], n_images: int, **fig1: Any) -> None:
        group = TASK_GROUP[task]
        for item in data[group][:n_images]:
            for seed in range(seeds):
                tag = f"-sigma{fig1['input_sigma']:g}" if fig1 else ""
                run_id = _slug(f"{task}-{setting[0]}-{variant}{tag}-{item.ident}-s{seed}")
                argv = _argv(task, item, profile.sizes[group], method,
                             None if method in NO_ITERATIONS_OPTION else iterations, seed, profile.track_every,
                             setting[1] + options, device)
                runs.append(Run(exp, run_id, task, setting[0], variant, method, item, seed, argv, **fig1))

    B = profile.iterations
    if "table2" in experiments:
        for task in (t for t in TASK_ORDER if t in tasks):
            for setting in task_settings(task, profile):
                for method in table2_methods(task, extra_baselines):
                    add("table2", task, setting, method, method, B, [], profile.images)
    if "fig4" in experiments:  # Figure 4: MRI 4x and CT 18 views, to twice the budget
        for task in (t for t in ("mri", "ct") if t in tasks):
            setting = task_settings(task, profile)[0]
            for variant, method, opts in (("aseqdip lambda=1", "aseqdip", ["--lam", "1"]),
                                          ("aseqdip lambda=0", "aseqdip", ["--lam", "0"]),
                                          ("dip", "dip", []), ("selfguided", "selfguided", [])):
                add("fig4", task, setting, variant, method, profile.curve_iterations, opts, profile.images)
    if "lambda" in experiments and "mri" in tasks:  # Appendix C.4 (Figure 9): MRI 4x, N = 2
        setting = task_settings("mri", profile)[0]
        for lam in (0.5, 1.0, 2.0):
            add("lambda", "mri", setting, f"lambda={lam:g}", "aseqdip", profile.lambda_iterations,
                ["--lam", f"{lam:g}", "--inner-steps", "2"], profile.images)
    if "nk" in experiments:  # Appendix C.5 (Figure 10): N*K = budget on MRI, CT, denoising, inpainting
        for task in (t for t in ("mri", "ct", "denoise", "inpaint") if t in tasks):
            setting = task_settings(task, profile)[0]
            for n in (1, 2, 4):
                add("nk", task, setting, f"N={n}, K={B // n}", "aseqdip", B, ["--inner-steps", str(n)],
                    profile.images)
    if "fig1" in experiments and "mri" in tasks:  # Figure 1: DIP's best PSNR with input x* + noise, MRI 4x
        setting = task_settings("mri", profile)[0]
        for base in ("truth", "zero"):
            for sigma in profile.fig1_sigmas:
                add("fig1", "mri", setting, f"dip input {base}", "dip", profile.fig1_iterations, [],
                    profile.fig1_images, input_sigma=sigma, input_base=base)
    return runs

