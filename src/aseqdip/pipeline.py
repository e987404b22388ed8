"""The run pipeline: parsed options -> task, method, output rule -> reconstruction -> output folder.

``aseqdip run`` and ``aseqdip reconstruct`` (``cli``), every study of ``aseqdip batch`` (``batch.worker``)
and the benchmarks go through these functions, so a run means the same thing everywhere. Nothing here
parses a command line or prints a result: ``cli`` does that.

Safety, in the order a run meets it: the options are checked (:mod:`aseqdip.preflight`: finite numbers,
sizes, device, a writable output that loses no file), the run's fingerprint is taken
(:mod:`aseqdip.fingerprint`) and a checkpoint to resume must match it; only then is any data read or
anything computed. A run whose loss or image goes non-finite stops (:class:`~aseqdip.errors.NonFiniteError`);
an interrupted one says what it kept (:class:`~aseqdip.errors.Interrupted`). The results appear as a
whole folder, with the fingerprint in ``metrics.json``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import Interrupted, NonFiniteError, UserInputError
from .fingerprint import input_files, run_fingerprint
from .messages import warn

# options every network method takes; each method's own are declared in its module (methods.registry.Option)
COMMON_METHOD_OPTIONS = ("iterations", "lr")


# a year of steps at the fastest step measured (7.7 ms, MRI 320 px on an H200: benchmarks/results/device-h200)
MAX_ITERATIONS = 4 * 10**9


def validate_common(args: argparse.Namespace) -> None:
    """Checks of the options every task shares (no data read, nothing about this machine)."""
    from .preflight import MIN_SIDE, check_numbers

    check_numbers(args)
    if getattr(args, "size", None) is not None and args.size < 1:
        raise UserInputError(f"--size must be a positive number of pixels, got {args.size}")
    if getattr(args, "size", None) is not None and args.size < MIN_SIDE:
        raise UserInputError(f"--size {args.size} is below the smallest image aseqdip reconstructs, "
                             f"{MIN_SIDE}x{MIN_SIDE} (the SSIM window)")
    if getattr(args, "iterations", None) is not None and args.iterations < 1:
        raise UserInputError(f"--iterations must be at least 1, got {args.iterations}")
    if getattr(args, "iterations", None) is not None and args.iterations > MAX_ITERATIONS:
        raise UserInputError(f"--iterations {args.iterations} is more than a year of steps even at the fastest step "
                             f"measured (about 8 ms on an H200); use at most {MAX_ITERATIONS:.0e}")
    if getattr(args, "track_every", 1) < 1:
        raise UserInputError("--track-every must be at least 1")
    if getattr(args, "checkpoint_every", None) is not None and args.checkpoint_every < 1:
        raise UserInputError(f"--checkpoint-every must be at least 1, got {args.checkpoint_every}")


def task_class(args: argparse.Namespace) -> type:
    """The task ``args.task`` names (after the shared checks)."""
    from .tasks import TASKS

    validate_common(args)
    if args.task not in TASKS:
        raise UserInputError(f"unknown task {args.task!r}; choose from {', '.join(TASKS)}")
    return TASKS[args.task]


def make_method(args: argparse.Namespace, task_cls: type) -> Any:
    """The method the options ask for, with the task's defaults underneath."""
    from .methods.registry import build_method, method_options

    options = {key: getattr(args, key, None) for key in COMMON_METHOD_OPTIONS}
    declared = method_options()
    options.update({option.name: getattr(args, option.dest, None) for option in declared})
    options.update(seed=args.seed, device=args.device, precision=args.precision, progress=not args.no_progress,
                   network=args.network or task_cls.network)
    options.update(getattr(args, "method_extra", {}))
    for key, value in recipe_options(args).items():  # the recipe's choices where the user made none
        if options.get(key) is None:
            options[key] = value
    for key in rule_owned(args):  # options a stopping rule uses when the method has no such setting
        options[key] = None
    return build_method(args.method, options, task_cls.method_defaults.get(args.method), warn=warn,
                        flags={option.name: option.option_string for option in declared})


def recipe_options(args: argparse.Namespace) -> dict[str, Any]:
    """What ``--recipe`` sets for this method and task (``aseqdip.recipes``)."""
    from .recipes import default_recipe, recipe_settings

    task = getattr(args, "task", None)
    try:
        return recipe_settings(getattr(args, "recipe", None) or default_recipe(task), task, args.method)
    except ValueError as exc:
        raise UserInputError(f"--recipe: {exc}") from None


def method_accepts(args: argparse.Namespace, key: str) -> bool:
    from .methods import METHODS
    from .methods.registry import method_parameters

    return args.method in METHODS and key in method_parameters(METHODS[args.method])


def rule_owned(args: argparse.Namespace) -> set[str]:
    """Method keyword arguments that --ema / --stop take over because the method itself has none
    (``auto`` counts as a rule that may use the noise level: what it means is resolved in the run's plan)."""
    stop = getattr(args, "stop", "none")
    keys = {"ema"} | ({"window", "patience"} if stop == "wmv" else set()) | (
        {"sure_sigma"} if stop in ("sure", "discrepancy", "auto") else set())
    return {k for k in keys if not method_accepts(args, k)}


def output_rule(args: argparse.Namespace) -> Any:
    """The stopping/output rule the options ask for (docs/stopping.md); ``auto`` stays ``auto``: the run's plan
    (:func:`aseqdip.plan.make_plan`) resolves it, falls back to the fixed budget when no noise level can be
    found, and records what auto chose (metrics.json -> ``stopping.auto``)."""
    from .outputrule import OutputRule
    from .physics.noise_level import from_255

    stop = getattr(args, "stop", "none")
    owned = rule_owned(args)
    sigma = getattr(args, "sure_sigma", None)
    options = {"stop": stop, "seed": args.seed,
               "ema": args.ema if "ema" in owned else None,
               "sigma": None if sigma is None else from_255(sigma),
               "holdout": getattr(args, "holdout", None), "refit": getattr(args, "refit", None),
               "every": getattr(args, "stop_every", None), "tau": getattr(args, "tau", None),
               "window": getattr(args, "es_window", None) if stop == "wmv" else None,
               "patience": (getattr(args, "es_patience", None) if stop == "wmv" else None)
               or getattr(args, "stop_patience", None),
               "noise": getattr(args, "sigma_from", None),
               "observe": tuple(n.strip() for n in args.observe.split(",") if n.strip()) if getattr(
                   args, "observe", None) else None}
    return OutputRule(**{k: v for k, v in options.items() if v is not None})


def checkpoint_path(out: str | Path) -> Path:
    """Where a run writing into ``out`` keeps its checkpoint: a hidden file beside the folder."""
    out = Path(out)
    return out.parent / f".{out.name}.checkpoint.pt"


def check_before_computing(args: argparse.Namespace) -> dict[str, Any]:
    """The checks that need this machine and the file system; returns the run's fingerprint.

    Refused here, in one line, with nothing read or written: a device that is not there, an output folder
    that would lose or mix files, and a checkpoint to resume that belongs to another run or is damaged.
    Before the output check, what a run for the same ``--out`` killed while saving left is cleaned up.
    """
    from .engine.checkpoint import check_match, read_checkpoint
    from .io.outputs import refuse_if_locked, remove_stale_staging
    from .preflight import check_device, check_out_name, check_output

    check_device(args.device)
    if not str(args.out).strip():
        raise UserInputError("--out is empty; name a new folder for the results")
    check_out_name(Path(args.out))
    refuse_if_locked(args.out)
    remove_stale_staging(args.out)
    check_output(Path(args.out), overwrite=bool(getattr(args, "overwrite", False)),
                 inputs=input_files(args).values())
    fingerprint = run_fingerprint(args)
    checkpoint = checkpoint_path(args.out)
    if checkpoint.exists() and not getattr(args, "resume", False):
        raise UserInputError(f"a checkpoint of an earlier run into --out {args.out} is at {checkpoint}: add --resume "
                             f"to continue it, or delete that file to start afresh")
    if getattr(args, "resume", False) and checkpoint.exists():
        check_match(checkpoint, read_checkpoint(checkpoint), "fingerprint", fingerprint)
    return fingerprint


def check_problem(args: argparse.Namespace, problem: Any) -> None:
    """Refuse a problem whose image is below the SSIM window (when it is scored) or too large for memory."""
    from .preflight import check_image_size

    height, width = problem.x0.shape[-2:]
    what = getattr(args, "image", None) or "the image"
    check_image_size(int(height), int(width), f"{what} (as reconstructed)", args.device,
                     minimum=problem.x_true is not None)


def solve(args: argparse.Namespace, method: Any, problem: Any, callbacks: Sequence[Any] = (),
          **saving: Any) -> Any:
    """Reconstruct ``problem`` with ``method`` under the options' output rule; refuse a non-finite image.

    The one call into :func:`aseqdip.rules.reconstruct` of a command: the oracle monitor and score when the
    problem has a ground truth, the task's knowledge of the acquisition (``problem.hints``). ``callbacks`` join the run's
    (``aseqdip volume``'s warm start); ``saving`` are the checkpoint arguments.
    """
    import torch

    from .rules import reconstruct

    result = reconstruct(method, problem.y, problem.physics, output_rule(args), x0=problem.x0,
                         monitor=problem.psnr if problem.x_true is not None else None,
                         callbacks=callbacks, track_every=args.track_every,
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


def solve_and_save(args: argparse.Namespace, method: Any, problem: Any, extra: dict[str, Any],
                   fingerprint: dict[str, Any] | None = None) -> dict[str, Any]:
    """Reconstruct ``problem`` with ``method`` and write the run's files into ``args.out`` (as a whole).

    ``fingerprint`` is :func:`check_before_computing`'s (taken here when not given); it goes into
    ``metrics.json`` and the checkpoints.
    """
    from .engine.warm import save_weights
    from .io import StagedOutput
    from .io.outputs import OutputLock
    from .report import save_run

    if fingerprint is None:
        fingerprint = check_before_computing(args)
    check_problem(args, problem)
    warm = start_and_keep(args, method)
    saving: dict[str, Any] = {}
    every = getattr(args, "checkpoint_every", None)
    if every is not None or getattr(args, "resume", False):
        saving = {"checkpoint": checkpoint_path(args.out), "checkpoint_every": every or 500,
                  "resume": bool(getattr(args, "resume", False)), "checkpoint_fingerprint": fingerprint}
    try:
        with OutputLock(args.out):  # a second run for this --out is refused before it computes
            result = solve(args, method, problem, callbacks=[] if warm is None else [warm], **saving)
            with StagedOutput(args.out, replace=bool(getattr(args, "overwrite", False))) as out:
                metrics = save_run(out, problem, method.name, result.hyperparameters or method.hyperparameters(), result,
                                   extra={**extra, "recipe": recipe_record(args), "fingerprint": fingerprint,
                                          **({"init": str(args.init)} if getattr(args, "init", None) else {})})
                if getattr(args, "save_weights", False) and warm is not None and warm.final is not None:
                    save_weights(out.path(WEIGHTS_FILE), warm.final,
                                 {"method": method.name, "hyperparameters": metrics["hyperparameters"],
                                  "task": problem.task, "image_shape": metrics["image_shape"]})
    except NonFiniteError as exc:
        exc.kept = kept_note(args, bool(saving), diverged=True)
        raise
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted; {kept_note(args, bool(saving))}") from None
    if saving:
        saving["checkpoint"].unlink(missing_ok=True)  # the results are in place: the checkpoint has done its job
    return metrics


WEIGHTS_FILE = "weights.pt"  # a run's final network weights and input, written with --save-weights


def start_and_keep(args: argparse.Namespace, method: Any) -> Any:
    """The warm start of ``--init`` (an earlier run's folder or its weights file) and/or the capture of the final
    weights for ``--save-weights``; None when neither is asked. A bad file is refused before any computation.

    Adam's moments travel with the weights and are loaded when the same method wrote them: a fresh Adam's
    first steps move every weight by about the learning rate whatever its gradient, and at DIP's 1e-2 that
    threw a fitted network from 22.94 to 11.45 dB in one step (tests/test_init.py's image)."""
    from .engine.warm import WarmStart, load_weights

    init, keep = getattr(args, "init", None), bool(getattr(args, "save_weights", False))
    if not init and not keep:
        return None
    if not hasattr(method, "build_network"):
        raise UserInputError(f"--init and --save-weights apply to the network methods; {method.name} has no network")
    start, same_method = None, False
    if init:
        path = Path(init) / WEIGHTS_FILE if Path(init).is_dir() else Path(init)
        if not path.is_file():
            raise UserInputError(f"--init {init}: no such file (give a run's folder written with --save-weights, or "
                                 f"its {WEIGHTS_FILE})")
        try:
            start, about = load_weights(path)
        except ValueError as exc:
            raise UserInputError(f"--init {init}: {exc}") from None
        same_method = about.get("method") == method.name
    return WarmStart(start, optimizer=same_method or (start is None and keep))


def recipe_record(args: argparse.Namespace) -> dict[str, Any]:
    """metrics.json's record of the recipe: its name and what it set (the user's own options overrode it)."""
    from .recipes import default_recipe

    return {"name": getattr(args, "recipe", None) or default_recipe(getattr(args, "task", None)),
            "set": recipe_options(args)}


def kept_note(args: argparse.Namespace, checkpointing: bool, diverged: bool = False) -> str:
    """What a run that stopped early (interrupted, or ``diverged``) left on disk, and how to go on."""
    checkpoint = checkpoint_path(args.out)
    if checkpointing and checkpoint.exists():
        if diverged:
            return f"no results were written; the checkpoint {checkpoint}, from before that step, is kept"
        return (f"no results were written; the checkpoint {checkpoint} is kept: rerun the same command with "
                f"--resume to continue from it")
    if checkpointing or diverged:
        return "nothing was written"
    return "nothing was written (--checkpoint-every M saves a run that --resume can continue)"


def run_simulated(args: argparse.Namespace) -> dict[str, Any]:
    """``aseqdip run``: simulate a measurement from a clean image, reconstruct it, write the results."""
    from .preflight import check_image_size

    task_cls = task_class(args)
    task = task_cls.from_args(args)  # validates the task's options before any work
    method = make_method(args, task_cls)
    fingerprint = check_before_computing(args)
    if args.size is not None:
        check_image_size(args.size, args.size, f"--size {args.size}", args.device)
    x = task.load(args.image, size=args.size)
    check_image_size(int(x.shape[-2]), int(x.shape[-1]), args.image, args.device)
    problem = task.simulate(x, seed=args.seed)
    return solve_and_save(args, method, problem, {"image": args.image, "size": args.size}, fingerprint)


def run_measured(args: argparse.Namespace) -> dict[str, Any]:
    """``aseqdip reconstruct``: reconstruct measured data (k-space, sinogram), write the results."""
    task_cls = task_class(args)
    method = make_method(args, task_cls)
    fingerprint = check_before_computing(args)
    problem = task_cls.from_measurement(args)
    return solve_and_save(args, method, problem, {}, fingerprint)


def execute(args: argparse.Namespace) -> dict[str, Any]:
    """Run ``args.command`` (``run`` or ``reconstruct``) and return its metrics."""
    return run_simulated(args) if args.command == "run" else run_measured(args)


def check_options(args: argparse.Namespace) -> None:
    """Build the task and the method the options ask for, without reading data or computing anything."""
    task_cls = task_class(args)
    if args.command == "run":
        task_cls.from_args(args)
    make_method(args, task_cls)
