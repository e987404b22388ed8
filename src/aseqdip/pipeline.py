"""The run pipeline: options -> task, method, output rule -> reconstruction -> output folder.

``aseqdip run`` and ``aseqdip reconstruct`` (``cli``), every study of ``aseqdip batch`` (``batch.worker``)
and the benchmarks go through these functions, so a run means the same thing everywhere. They take a
:class:`~aseqdip.options.RunOptions` (plain values, grouped by owner); nothing here parses a command line
or prints a result: ``cli`` does that.

Safety, in the order a run meets it: the options are checked (:mod:`aseqdip.preflight`: finite numbers,
sizes, device, a writable output that loses no file), the run's fingerprint is taken
(:mod:`aseqdip.fingerprint`) and a checkpoint to resume must match it; only then is any data read or
anything computed. A run whose loss or image goes non-finite stops (:class:`~aseqdip.errors.NonFiniteError`);
an interrupted one says what it kept (:class:`~aseqdip.errors.Interrupted`). The results appear as a
whole folder, with the fingerprint in ``metrics.json``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import Interrupted, NonFiniteError, UserInputError
from .fingerprint import input_files, run_fingerprint
from .messages import warn
from .options import RunOptions, StopOptions

# options every network method takes; each method's own are declared in its module (methods.registry.Option)
COMMON_METHOD_OPTIONS = ("iterations", "lr")


# a year of steps at the fastest step measured (7.7 ms, MRI 320 px on an H200: benchmarks/results/device-h200)
MAX_ITERATIONS = 4 * 10**9


def validate_common(options: RunOptions) -> None:
    """Checks of the options every task shares (no data read, nothing about this machine)."""
    from .preflight import MIN_SIDE, check_numbers

    check_numbers(record(options))
    size, iterations = options.size, options.iterations
    if size is not None and size < 1:
        raise UserInputError(f"--size must be a positive number of pixels, got {size}")
    if size is not None and size < MIN_SIDE:
        raise UserInputError(f"--size {size} is below the smallest image aseqdip reconstructs, "
                             f"{MIN_SIDE}x{MIN_SIDE} (the SSIM window)")
    if iterations is not None and iterations < 1:
        raise UserInputError(f"--iterations must be at least 1, got {iterations}")
    if iterations is not None and iterations > MAX_ITERATIONS:
        raise UserInputError(f"--iterations {iterations} is more than a year of steps even at the fastest step "
                             f"measured (about 8 ms on an H200); use at most {MAX_ITERATIONS:.0e}")
    if options.track_every < 1:
        raise UserInputError("--track-every must be at least 1")
    if options.checkpoint_every is not None and options.checkpoint_every < 1:
        raise UserInputError(f"--checkpoint-every must be at least 1, got {options.checkpoint_every}")


def record(options: RunOptions) -> dict[str, Any]:
    """The options as one flat record under their flags' names: what the fingerprint and the number check read."""
    from .methods.registry import flag_names

    return options.record(flag_names())


def task_class(options: RunOptions) -> type:
    """The task ``options.task`` names (after the shared checks)."""
    from .tasks import TASKS

    validate_common(options)
    if options.task not in TASKS:
        raise UserInputError(f"unknown task {options.task!r}; choose from {', '.join(TASKS)}")
    return TASKS[options.task]


def make_task(options: RunOptions, task_cls: type) -> Any:
    """The task with its options (validated before any work)."""
    return task_cls.from_options(**options.task_options)


def make_method(options: RunOptions, task_cls: type) -> Any:
    """The method the options ask for, with the task's defaults underneath."""
    from .methods.registry import build_method, method_options

    declared = method_options()
    given: dict[str, Any] = {"iterations": options.iterations, "lr": options.lr}
    for option in declared:  # a flag the rules share (--ema, --es-window ...) is read from the rule's options
        shared = option.dest in STOP_FIELDS
        given[option.name] = getattr(options.stopping, option.dest) if shared else options.method_options.get(option.name)
    given.update(seed=options.seed, device=options.device, precision=options.precision, progress=options.progress,
                 network=options.network or task_cls.network)
    given.update(options.extra_method_arguments)
    for key, value in recipe_options(options).items():  # the recipe's choices where the user made none
        if given.get(key) is None:
            given[key] = value
    for key in rule_owned(options):  # options a stopping rule uses when the method has no such setting
        given[key] = None
    return build_method(options.method, given, task_cls.method_defaults.get(options.method), warn=warn,
                        flags={option.name: option.option_string for option in declared})


STOP_FIELDS = frozenset(StopOptions.__dataclass_fields__)


def chosen_recipe(options: RunOptions) -> str:
    """``--recipe``, or the task's default recipe."""
    from .recipes import default_recipe

    return options.recipe or default_recipe(options.task)


def recipe_options(options: RunOptions) -> dict[str, Any]:
    """What ``--recipe`` sets for this method and task (``aseqdip.recipes``)."""
    from .recipes import recipe_settings

    try:
        return recipe_settings(chosen_recipe(options), options.task, options.method)
    except ValueError as exc:
        raise UserInputError(f"--recipe: {exc}") from None


def method_accepts(method: str, key: str) -> bool:
    from .methods import METHODS
    from .methods.registry import method_parameters

    return method in METHODS and key in method_parameters(METHODS[method])


def rule_owned(options: RunOptions) -> set[str]:
    """Method keyword arguments that --ema / --stop take over because the method itself has none
    (``auto`` counts as a rule that may use the noise level: what it means is resolved in the run's plan)."""
    stop = options.stopping.stop
    keys = {"ema"} | ({"window", "patience"} if stop == "wmv" else set()) | (
        {"sure_sigma"} if stop in ("sure", "discrepancy", "auto") else set())
    return {k for k in keys if not method_accepts(options.method, k)}


def output_rule(options: RunOptions) -> Any:
    """The stopping/output rule the options ask for (docs/stopping.md); ``auto`` stays ``auto``: the run's plan
    (:func:`aseqdip.plan.make_plan`) resolves it, falls back to the fixed budget when no noise level can be
    found, and records what auto chose (metrics.json -> ``stopping.auto``)."""
    from .outputrule import OutputRule
    from .physics.noise_level import from_255

    rule = options.stopping
    owned = rule_owned(options)
    wmv = rule.stop == "wmv"
    values = {"stop": rule.stop, "seed": options.seed,
              "ema": rule.ema if "ema" in owned else None,
              "sigma": None if rule.sure_sigma is None else from_255(rule.sure_sigma),
              "holdout": rule.holdout, "refit": rule.refit, "every": rule.stop_every, "tau": rule.tau,
              "confirm": rule.confirm,
              "window": rule.es_window if wmv else None,
              "patience": (rule.es_patience if wmv else None) or rule.stop_patience,
              "noise": rule.sigma_from, "observe": tuple(rule.observe) if rule.observe else None}
    return OutputRule(**{k: v for k, v in values.items() if v is not None})


def checkpoint_path(out: str | Path) -> Path:
    """Where a run writing into ``out`` keeps its checkpoint: a hidden file beside the folder."""
    out = Path(out)
    return out.parent / f".{out.name}.checkpoint.pt"


def check_before_computing(options: RunOptions) -> dict[str, Any]:
    """The checks that need this machine and the file system; returns the run's fingerprint.

    Refused here, in one line, with nothing read or written: a device that is not there, an output folder
    that would lose or mix files, and a checkpoint to resume that belongs to another run or is damaged.
    Before the output check, what a run for the same ``--out`` killed while saving left is cleaned up.
    """
    from .engine.checkpoint import check_match, read_checkpoint
    from .io.outputs import refuse_if_locked, remove_stale_staging
    from .preflight import check_device, check_out_name, check_output

    check_device(options.device)
    if not str(options.out).strip():
        raise UserInputError("--out is empty; name a new folder for the results")
    out = Path(options.out)
    check_out_name(out)
    refuse_if_locked(out)
    remove_stale_staging(out)
    flat = record(options)
    check_output(out, overwrite=options.overwrite, inputs=input_files(flat).values())
    fingerprint = run_fingerprint(flat)
    checkpoint = checkpoint_path(out)
    if checkpoint.exists() and not options.resume:
        raise UserInputError(f"a checkpoint of an earlier run into --out {out} is at {checkpoint}: add --resume "
                             f"to continue it, or delete that file to start afresh")
    if options.resume and checkpoint.exists():
        check_match(checkpoint, read_checkpoint(checkpoint), "fingerprint", fingerprint)
    return fingerprint


def check_problem(options: RunOptions, problem: Any) -> None:
    """Refuse a problem whose image is below the SSIM window (when it is scored) or too large for memory."""
    from .preflight import check_image_size

    height, width = problem.x0.shape[-2:]
    what = options.image or "the image"
    check_image_size(int(height), int(width), f"{what} (as reconstructed)", options.device,
                     minimum=problem.x_true is not None)


def solve(options: RunOptions, method: Any, problem: Any, callbacks: Sequence[Any] = (), **saving: Any) -> Any:
    """Reconstruct ``problem`` with ``method`` under the options' output rule; refuse a non-finite image.

    The one call into :func:`aseqdip.rules.reconstruct` of a command: the oracle monitor and score when the
    problem has a ground truth, the task's knowledge of the acquisition (``problem.hints``). ``callbacks`` join the run's
    (``aseqdip volume``'s warm start); ``saving`` are the checkpoint arguments.
    """
    import torch

    from .rules import reconstruct

    result = reconstruct(method, problem.y, problem.physics, output_rule(options), x0=problem.x0,
                         monitor=problem.psnr if problem.x_true is not None else None,
                         callbacks=callbacks, track_every=options.track_every,
                         score=problem.metrics if problem.x_true is not None else None,
                         hints=problem.hints, **saving)
    if not bool(torch.isfinite(result.image).all()):  # methods outside the loop (cs, fbp) end here too
        raise NonFiniteError(result.iteration_returned, "returned image", result.iterations)
    if problem.x_true is not None and "noise" in result.info:
        result.info["noise"]["realised_oracle"] = realised_noise_of(problem)
    return result


def realised_noise_of(problem: Any) -> float:
    """The noise actually drawn in a simulation (RMS of y - A x_true over the measured entries).

    Recorded beside the noise level a rule used, so a study can measure the estimator's error; it needs
    the ground truth (an oracle), and no rule reads it.
    """
    from .physics.holdout import measured_entries
    from .physics.noise_level import realised_noise

    return realised_noise(problem.physics, problem.y, problem.x_true, measured_entries(problem.physics, problem.y))


def solve_and_save(options: RunOptions, method: Any, problem: Any, extra: dict[str, Any],
                   fingerprint: dict[str, Any] | None = None) -> dict[str, Any]:
    """Reconstruct ``problem`` with ``method`` and write the run's files into ``options.out`` (as a whole).

    ``fingerprint`` is :func:`check_before_computing`'s (taken here when not given); it goes into
    ``metrics.json`` and the checkpoints.
    """
    from .engine.warm import save_weights
    from .io import StagedOutput
    from .io.outputs import OutputLock
    from .report import save_run

    if fingerprint is None:
        fingerprint = check_before_computing(options)
    check_problem(options, problem)
    warm = start_and_keep(options, method)
    if options.init:  # a fitted start: auto adds no ramp (aseqdip.auto.resolve)
        problem.hints = dataclasses.replace(problem.hints, fitted_start=True)
    saving: dict[str, Any] = {}
    if options.checkpoint_every is not None or options.resume:
        saving = {"checkpoint": checkpoint_path(options.out), "checkpoint_every": options.checkpoint_every or 500,
                  "resume": options.resume, "checkpoint_fingerprint": fingerprint}
    try:
        with OutputLock(options.out):  # a second run for this --out is refused before it computes
            result, options, method = solve_trying(options, method, problem, [] if warm is None else [warm], saving)
            with StagedOutput(options.out, replace=options.overwrite) as out:
                metrics = save_run(out, problem, method.name, result.hyperparameters or method.hyperparameters(), result,
                                   extra={**extra, "recipe": recipe_record(options), "fingerprint": fingerprint,
                                          **({"init": str(options.init)} if options.init else {})})
                if options.save_weights and warm is not None and warm.final is not None:
                    save_weights(out.path(WEIGHTS_FILE), warm.final,
                                 {"method": method.name, "hyperparameters": metrics["hyperparameters"],
                                  "task": problem.task, "image_shape": metrics["image_shape"]})
    except NonFiniteError as exc:
        exc.kept = kept_note(options.out, bool(saving), diverged=True)
        raise
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted; {kept_note(options.out, bool(saving))}") from None
    if saving:
        saving["checkpoint"].unlink(missing_ok=True)  # the results are in place: the checkpoint has done its job
        trial_checkpoint(saving["checkpoint"]).unlink(missing_ok=True)
    return metrics


def solve_trying(options: RunOptions, method: Any, problem: Any, callbacks: list[Any],
                 saving: dict[str, Any]) -> tuple[Any, RunOptions, Any]:
    """:func:`solve`, or where the recipe is a trial (``aseqdip.recipes.TRIALS``: the library's MRI recipe under
    ``auto``) the trial: the first recipe runs, and the run starts again with the second recipe only where the
    first one's rule found a noise level; otherwise (the data proved noise-free, or the residual never came down to
    the estimated level) the first is kept. Returns (result, the options and method that made it); the result's
    ``info["recipe_trial"]`` records the trial (its steps count in the run's cost)."""
    from .engine.stopping import NEAREST, NOISE_FREE
    from .recipes import trial

    pair = trial(chosen_recipe(options), options.task, options.method)
    if pair is None or options.stopping.stop != "auto" or options.init:
        return solve(options, method, problem, callbacks, **saving), options, method
    first_options = dataclasses.replace(options, recipe=pair[0])
    first = make_method(first_options, task_class(options))
    first_saving = {**saving, "checkpoint": trial_checkpoint(saving["checkpoint"])} if saving else {}
    tried = solve(first_options, first, problem, callbacks, **first_saving)
    # The rule's label says why it chose its image. Noise-free: the residual fell far below the estimated level
    # (Discrepancy, confirm). Nearest: it never came down to the level, so by the rule's own measure no noise was
    # fitted and the image stands, as under auto everywhere else (emri_small at 128 px: the residual still 13.8
    # times the level and falling at step 5500; docs/fidelity.md). Only a level reached and held is noise.
    kept = NOISE_FREE in tried.rule or NEAREST in tried.rule
    record = {"recipes": list(pair), "tried": pair[0], "kept": kept, "steps": tried.iterations,
              "seconds": round(tried.seconds, 3), "stop_reason": tried.info.get("stop_reason", ""), "rule": tried.rule}
    if kept:
        tried.info["recipe_trial"] = record
        return tried, first_options, first
    then_options = dataclasses.replace(options, recipe=pair[1])
    then = make_method(then_options, task_class(options))
    result = solve(then_options, then, problem, callbacks, **saving)
    result.info["recipe_trial"] = record
    return result, then_options, then


def trial_checkpoint(checkpoint: Path) -> Path:
    """Where the first recipe of a trial keeps its checkpoint (beside the run's own)."""
    return checkpoint.with_name(checkpoint.name.replace(".checkpoint.pt", ".trial.checkpoint.pt"))


WEIGHTS_FILE = "weights.pt"  # a run's final network weights and input, written with --save-weights


def start_and_keep(options: RunOptions, method: Any) -> Any:
    """The warm start of ``--init`` (an earlier run's folder or its weights file) and/or the capture of the final
    weights for ``--save-weights``; None when neither is asked. A bad file is refused before any computation.

    Adam's moments travel with the weights and are loaded when the same method wrote them: a fresh Adam's
    first steps move every weight by about the learning rate whatever its gradient, and at DIP's 1e-2 that
    threw a fitted network from 22.94 to 11.45 dB in one step (tests/test_init.py's image)."""
    from .engine.warm import WarmStart

    init, keep = options.init, options.save_weights
    if not init and not keep:
        return None
    if not hasattr(method, "build_network"):
        raise UserInputError(f"--init and --save-weights apply to the network methods; {method.name} has no network")
    start, same_method = initial_weights(init, method, options.task) if init else (None, False)
    return WarmStart(start, optimizer=same_method or (start is None and keep))


def initial_weights(init: str, method: Any, task: str | None = None) -> tuple[Any, bool]:
    """The weights ``--init`` names (an earlier run's folder, a prior's, or its weights file), read without running
    code, and whether ``method`` wrote them (then their Adam moments are loaded too). A bad file, or weights of
    another network or task (as their record says), is refused in one line before any computation."""
    from .engine.warm import load_weights

    if not hasattr(method, "build_network"):
        raise UserInputError(f"--init applies to the network methods; {method.name} has no network")
    path = Path(init) / WEIGHTS_FILE if Path(init).is_dir() else Path(init)
    if not path.is_file():
        raise UserInputError(f"--init {init}: no such file (give a run's folder written with --save-weights, or "
                             f"its {WEIGHTS_FILE})")
    try:
        start, about = load_weights(path)
    except ValueError as exc:
        raise UserInputError(f"--init {init}: {exc}") from None
    theirs = (about.get("hyperparameters") or {}).get("network")
    ours = method.hyperparameters().get("network")
    if theirs is not None and ours is not None and theirs != ours:
        raise UserInputError(f"--init {init}: its weights are of network {theirs}, this run's network is {ours} "
                             f"(give --network {theirs}, or weights of {ours})")
    if task is not None and about.get("task") not in (None, task):
        raise UserInputError(f"--init {init}: its weights were fitted for task {about['task']}, not {task}")
    return start, about.get("method") == method.name


def recipe_record(options: RunOptions) -> dict[str, Any]:
    """metrics.json's record of the recipe: its name and what it set (the user's own options overrode it)."""
    return {"name": chosen_recipe(options), "set": recipe_options(options)}


def kept_note(out: str | Path, checkpointing: bool, diverged: bool = False) -> str:
    """What a run into ``out`` that stopped early (interrupted, or ``diverged``) left on disk, and how to go on."""
    checkpoint = checkpoint_path(out)
    if checkpointing and checkpoint.exists():
        if diverged:
            return f"no results were written; the checkpoint {checkpoint}, from before that step, is kept"
        return (f"no results were written; the checkpoint {checkpoint} is kept: rerun the same command with "
                f"--resume to continue from it")
    if checkpointing or diverged:
        return "nothing was written"
    return "nothing was written (--checkpoint-every M saves a run that --resume can continue)"


def run_simulated(options: RunOptions) -> dict[str, Any]:
    """``aseqdip run``: simulate a measurement from a clean image, reconstruct it, write the results."""
    from .preflight import check_image_size

    task_cls = task_class(options)
    task = make_task(options, task_cls)  # validates the task's options before any work
    method = make_method(options, task_cls)
    fingerprint = check_before_computing(options)
    if options.image is None:
        raise UserInputError("aseqdip run simulates from a clean image: give --image")
    if options.size is not None:
        check_image_size(options.size, options.size, f"--size {options.size}", options.device)
    x = task.load(options.image, size=options.size)
    check_image_size(int(x.shape[-2]), int(x.shape[-1]), options.image, options.device)
    problem = task.simulate(x, seed=options.seed)
    return solve_and_save(options, method, problem, {"image": options.image, "size": options.size}, fingerprint)


def run_measured(options: RunOptions) -> dict[str, Any]:
    """``aseqdip reconstruct``: reconstruct measured data (k-space, sinogram), write the results."""
    task_cls = task_class(options)
    method = make_method(options, task_cls)
    fingerprint = check_before_computing(options)
    problem = task_cls.from_measurement(seed=options.seed, **options.task_options)
    return solve_and_save(options, method, problem, {}, fingerprint)


def execute(options: RunOptions) -> dict[str, Any]:
    """Run ``options.command`` (``run`` or ``reconstruct``) and return its metrics."""
    if options.command == "volume":
        raise ValueError("a volume runs through aseqdip.volume.run_volume, not execute")
    return run_simulated(options) if options.command == "run" else run_measured(options)


def check_options(options: RunOptions) -> None:
    """Build the task and the method the options ask for, without reading data or computing anything."""
    task_cls = task_class(options)
    if options.command == "run":
        make_task(options, task_cls)
    make_method(options, task_cls)
