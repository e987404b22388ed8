"""The ``aseqdip`` command: simulate a measurement, reconstruct, and write the results.

This module parses the command line, hands the options to ``pipeline`` (or ``batch``, ``volume``) and prints. Every
user mistake (a bad file, an unknown task, an out-of-range option, an output folder that would lose
files) ends in one line on stderr and exit status 2, with no traceback and nothing written; a run whose
loss or image goes NaN or infinite ends in one line and exit status 3; Ctrl-C in one line that says
what was kept, exit status 130. Warnings of the libraries underneath do not reach the terminal
(``ASEQDIP_SHOW_WARNINGS=1`` shows them).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import sys
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

from . import pipeline
from .errors import Interrupted, NonFiniteError, StorageError, UserInputError
from .options import RunOptions

EXIT_USAGE = 2
EXIT_NON_FINITE = 3
EXIT_STORAGE = 1  # a file could not be written (full disk, file size limit ...)
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """argparse that reports errors in one line (no usage dump)."""

    def error(self, message: str) -> NoReturn:
        raise UserInputError(message)


def add_method_arguments(p: argparse.ArgumentParser, checkpoints: bool = True) -> None:
    from .methods import METHODS

    g = p.add_argument_group("method")
    g.add_argument("--method", default="aseqdip", help=f"one of {', '.join(sorted(METHODS))} (default aseqdip)")
    g.add_argument("--iterations", type=int, default=None, help="total gradient steps N*K (default 4000, the paper's)")
    g.add_argument("--lr", type=float, default=None, help="Adam learning rate (aSeqDIP 1e-4, DIP 1e-2)")
    g.add_argument("--recipe", default=None, choices=("paper", "authors", "library"),
                   help="aSeqDIP: Algorithm 1 as the paper writes it (paper), as the authors' public script for "
                        "the task runs it (authors), or this library's measured choice (library: inpainting's "
                        "hole filled by biharmonic inpainting in z_0, 200 warm-up steps, one input update; MRI: a "
                        "trial of the authors' recipe, kept on noise-free k-space); default: library for "
                        "inpainting and MRI, paper elsewhere (docs/fidelity.md); options given here override it")
    g.add_argument("--network", default=None, help="medium_unet, shallow_unet or skip (default: the task's)")
    g.add_argument("--seed", type=int, default=0, help="seed for the network, the input and the simulation")
    g.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    g.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"),
                   help="bf16 autocast + channels_last, or fp32; auto picks bf16 where it was measured faster "
                        "(CPUs with bf16 arithmetic; GPUs at 512x512 pixels and more)")
    g.add_argument("--track-every", type=int, default=10, help="record PSNR/loss every this many steps (default 10)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_stopping_arguments(p)
    add_registered_method_options(p)
    if checkpoints:
        add_checkpoint_arguments(p)
        add_weight_arguments(p)


def add_weight_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("starting from a fitted network")
    g.add_argument("--init", default=None,
                   help="start the network from an earlier run's final weights: its output folder (written with "
                        "--save-weights) or the weights.pt in it; the same network and channel count")
    g.add_argument("--save-weights", action="store_true", default=None,
                   help="also write weights.pt: the final network weights, for --init (read without running code: "
                        "torch.load(weights_only=True))")


def add_checkpoint_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("checkpoints inside long runs")
    g.add_argument("--checkpoint-every", type=int, default=None,
                   help="save the run every M iterations beside the output folder (.OUT.checkpoint.pt), "
                        "removed once the results are written")
    g.add_argument("--resume", action="store_true",
                   help="continue from that checkpoint when it exists (same options and seed: on CPU the "
                        "result equals an uninterrupted run's)")


def add_stopping_arguments(p: argparse.ArgumentParser) -> None:
    """Stopping and output rules for every network method (docs/stopping.md); auto by default."""
    from .auto import DEFAULT_STOP
    from .rules import NOISE_SOURCES, OBSERVABLE, STOP_RULES

    g = p.add_argument_group("stopping and output rules (docs/stopping.md)")
    g.add_argument("--stop", choices=STOP_RULES, default=DEFAULT_STOP,
                   help="choose the returned iterate without the ground truth; the budget becomes a ceiling. "
                        "auto (default): per method, the rule chosen by measurement (aseqdip/auto.py, docs/auto.md): "
                        "the discrepancy principle on the noise level estimated from the measurement; "
                        "none: the method's output after the full budget (the paper's fixed budget, exactly); "
                        "selfval, wmv, discrepancy, sure (denoising): one rule")
    g.add_argument("--observe", default=None,
                   help="comma-separated rules that watch the run without stopping it and record their choice in "
                        f"metrics.json ({', '.join(OBSERVABLE)}; residual records the residual curve every --track-every steps, "
                        "so that a study can evaluate the discrepancy principle afterwards for any noise level)")
    g.add_argument("--sigma-from", choices=NOISE_SOURCES, default=None,
                   help="--stop discrepancy/sure without --sure-sigma: the simulation's noise model (default), an "
                        "estimate from the measurement (what auto uses, bar CT without --photons), or none: the data "
                        "taken as noise-free, so discrepancy returns the iterate with the smallest residual")
    g.add_argument("--holdout", type=float, default=None,
                   help="--stop selfval: fraction of the measured entries held out (default 0.1)")
    g.add_argument("--refit", action="store_true", default=None,
                   help="--stop selfval: rerun on all measurements for the iterations it found")
    g.add_argument("--stop-every", type=int, default=None,
                   help="--stop selfval/sure/discrepancy: check every this many steps (default 5, 5, 1)")
    g.add_argument("--stop-patience", type=int, default=None,
                   help="--stop selfval/sure: steps without a new minimum before stopping (default 500)")
    g.add_argument("--tau", type=float, default=None,
                   help="--stop discrepancy: stop once the residual is <= TAU sigma^2 per measured entry (default 1)")
    g.add_argument("--confirm", type=float, default=None,
                   help="--stop discrepancy: once the residual reaches the level, run this fraction of the steps taken "
                        "again; if the residual falls below half the level meanwhile, the level was the data's detail, "
                        "not noise, and the run goes to the budget (default off; auto: 1 with a data-consistent "
                        "input, --dc-update; 0: off)")
    g.add_argument("--ema", type=float, default=None,
                   help="return an exponential moving average of the estimates with this decay (e.g. 0.99), alone "
                        "or watched by --stop; selfguided, rethinking: their own average's weight (default 0.99)")
    g.add_argument("--es-window", type=int, default=None, help="esdip, --stop wmv: variance window W (default 100)")
    g.add_argument("--es-patience", type=int, default=None,
                   help="esdip, --stop wmv: patience P in steps (default 1000)")
    g.add_argument("--sure-sigma", type=float, default=None,
                   help="rethinking, --stop sure/discrepancy: noise std on the 0-255 scale "
                        "(default: read from the simulated noise)")


def add_registered_method_options(p: argparse.ArgumentParser) -> None:
    """The options each method declares in its own module (``Option``, ``aseqdip.methods.registry``), each flag
    once; a flag the rules share (``--ema``, ``--sure-sigma``, ``--es-window``, ``--es-patience``) is the rules'.
    Each defaults to None so that the method's published default applies (docs/methods.md)."""
    from .methods.registry import method_options

    g = p.add_argument_group("method options (defaults and their sources: docs/methods.md)")
    for option in method_options():
        if option.option_string in p._option_string_actions:  # the rules' flag, with its own help
            continue
        if option.type is None:
            g.add_argument(option.option_string, action="store_true", default=None, help=option.help)
        else:
            g.add_argument(option.option_string, type=option.type, default=None, choices=option.choices,
                           help=option.help.replace("%", "%%"))


def add_task_arguments(p: argparse.ArgumentParser, adder: str) -> None:
    """Each task's options in a group ``task NAME`` (the tasks' ``add_arguments`` or ``add_reconstruct_arguments``),
    and the names of every option in a ``task ...`` group, so that :func:`run_options` knows them as the task's."""
    from .tasks import TASKS

    for task in TASKS.values():
        getattr(task, adder)(p.add_argument_group(f"task {task.name}"))
    names = tuple(action.dest for group in p._action_groups if (group.title or "").startswith("task ")
                  for action in group._group_actions)
    p.set_defaults(task_option_names=names)


VOLUME_FIELDS = ("input", "cold", "warm_iterations", "warm_fraction", "warm_ramp", "warm_input", "warm_input_dc",
                 "shared_noise", "warm_optimizer", "warm_mix", "slab", "slices")


def run_options(args: argparse.Namespace) -> RunOptions:
    """The parsed command line of ``run``, ``reconstruct`` or ``volume`` as the library's options: the one place
    where flags become :class:`~aseqdip.options.RunOptions`."""
    from dataclasses import fields

    from .methods.registry import method_options
    from .options import StopOptions, VolumeOptions

    stop_fields = [f.name for f in fields(StopOptions)]
    stopping = {name: getattr(args, name, None) for name in stop_fields}
    stopping["observe"] = tuple(n.strip() for n in args.observe.split(",") if n.strip()) if args.observe else None
    method_given = {option.name: getattr(args, option.dest, None) for option in method_options()
                    if option.dest not in stop_fields}  # a flag the rules share is the rule's (StopOptions)
    return RunOptions(
        task=args.task, out=args.out, command="run" if args.command == "prior" else args.command,
        image=getattr(args, "image", None),
        size=getattr(args, "size", None), overwrite=bool(args.overwrite), method=args.method, iterations=args.iterations,
        lr=args.lr, recipe=args.recipe, network=args.network, seed=args.seed, device=args.device,
        precision=args.precision, track_every=args.track_every, progress=not args.no_progress,
        checkpoint_every=getattr(args, "checkpoint_every", None), resume=bool(args.resume),
        init=getattr(args, "init", None), save_weights=bool(getattr(args, "save_weights", False)),
        task_options={dest: getattr(args, dest) for dest in args.task_option_names},
        method_options=method_given, stopping=StopOptions(**stopping),
        volume=VolumeOptions(**{name: getattr(args, name) for name in VOLUME_FIELDS}) if args.command == "volume"
        else None)


def options_from_argv(argv: Sequence[str]) -> RunOptions:
    """The options of ``aseqdip run|reconstruct|volume ARGV...`` (``aseqdip batch`` builds each study's so)."""
    return run_options(build_parser().parse_args(list(argv)))


def build_parser() -> argparse.ArgumentParser:
    from .tasks import TASKS

    parser = _Parser(prog="aseqdip", description="Dataless image reconstruction with aSeqDIP and the DIP family.")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser, required=True)

    run = sub.add_parser("run", help="simulate a measurement from a clean image and reconstruct it")
    run.add_argument("--task", required=True, help=f"one of {', '.join(TASKS)}")
    run.add_argument("--image", required=True, help="image file (PNG, JPEG, TIFF, NPY, DICOM where the task reads it) "
                                                    "or skimage:NAME for an image bundled with scikit-image")
    run.add_argument("--size", type=int, default=None, help="centre-crop to a square and resize to SIZE x SIZE")
    run.add_argument("--out", required=True, help="output folder (new or empty)")
    run.add_argument("--overwrite", action="store_true", help="replace --out, an earlier run's folder, as a whole")
    add_method_arguments(run)
    add_task_arguments(run, "add_arguments")

    rec = sub.add_parser("reconstruct", help="reconstruct measured data (k-space, sinogram) of a task")
    rec.add_argument("--task", required=True, help=f"one of {', '.join(TASKS)}")
    rec.add_argument("--out", required=True, help="output folder (new or empty)")
    rec.add_argument("--overwrite", action="store_true", help="replace --out, an earlier run's folder, as a whole")
    add_method_arguments(rec)
    add_task_arguments(rec, "add_reconstruct_arguments")

    vol = sub.add_parser("volume", help="reconstruct a 3-D volume slice by slice, each slice warm-started from its "
                                        "neighbour (mri, ct, denoise)",
                         description="A DICOM series folder, an enhanced multi-frame DICOM, NIfTI, a 3-D .npy "
                                     "(the task simulates each slice's measurement, as 'aseqdip run'), or measured "
                                     "k-space (fastMRI .h5, as 'aseqdip reconstruct'). Options of 'aseqdip run' "
                                     "apply to every slice.")
    vol.add_argument("--task", required=True, help="mri, ct or denoise")
    vol.add_argument("--input", required=True, help="DICOM series folder, multi-frame .dcm, .nii/.nii.gz, 3-D .npy "
                                                    "(slices, H, W) or fastMRI .h5")
    vol.add_argument("--out", required=True, help="output folder (new or empty)")
    vol.add_argument("--overwrite", action="store_true", help="replace --out, an earlier volume's folder, as a whole")
    vol.add_argument("--size", type=int, default=None, help="centre-crop every slice to a square, resize to SIZE")
    vol.add_argument("--cold", action="store_true", help="reconstruct every slice from random weights (no warm start)")
    vol.add_argument("--warm-iterations", type=int, default=None,
                     help="ceiling of a warm-started slice (default all the steps the middle slice took under a "
                          "stopping rule; a fifth of --iterations under a fixed budget, --stop none)")
    vol.add_argument("--warm-fraction", type=float, default=None,
                     help="ceiling of a warm-started slice as a fraction of the steps the middle slice took "
                          "(default 1 under a stopping rule, 0.2 under a fixed budget)")
    vol.add_argument("--warm-ramp", action="store_true",
                     help="aSeqDIP: keep the ramp (--stop auto's 100 steps at 3 x lr) on warm-started slices too "
                          "(default: only the middle slice has it; the others start from a fitted network)")
    vol.add_argument("--warm-input", action=argparse.BooleanOptionalAction, default=None,
                     help="a warm-started slice starts its network input from the neighbour's final one (aSeqDIP: "
                          "the neighbour's estimate as its z_0; the default); --no-warm-input: its own first "
                          "estimate (y or A^H y)")
    vol.add_argument("--warm-input-dc", action=argparse.BooleanOptionalAction, default=None,
                     help="MRI: put the slice's own sampled k-space lines into the neighbour's estimate before it "
                          "becomes the warm slice's z_0 (the operator's data-consistency step)")
    vol.add_argument("--shared-noise", action=argparse.BooleanOptionalAction, default=None,
                     help="when the rule estimates the noise level, use one for the whole volume, the median of "
                          "its slices' estimates (default for mri and denoise); --no-shared-noise: each slice's own")
    vol.add_argument("--warm-optimizer", action="store_true",
                     help="carry Adam's moments to the next slice too (default: the weights only)")
    vol.add_argument("--warm-mix", type=float, default=None,
                     help="fraction of the neighbour's weights a warm slice starts from, the rest its own random "
                          "initialisation (default 1: the neighbour's weights as they are)")
    vol.add_argument("--slab", default=None, metavar="START:STOP",
                     help="only slices START to STOP-1 (warm-started within the slab from its middle): run slabs of "
                          "one volume as separate jobs")
    vol.add_argument("--slices", type=int, default=None, help="only the N slices around the middle")
    vol.add_argument("--init", default=None,
                     help="start the middle slice (every slice with --cold) from an earlier run's final weights: its "
                          "output folder (written with --save-weights) or the weights.pt in it")
    vol.add_argument("--resume", action="store_true",
                     help="continue an interrupted volume at the slice it was on (its finished slices are kept in "
                          ".OUT.volume beside --out; same options required)")
    add_method_arguments(vol, checkpoints=False)
    vol.add_argument_group("task mri (measured k-space)").add_argument(
        "--no-prewhiten", action="store_true",
        help="mri k-space: keep the coils as recorded (default: prewhiten with the file's noise scan)")
    add_task_arguments(vol, "add_arguments")

    batch = sub.add_parser("batch", allow_abbrev=False,
                           help="reconstruct every study (image, DICOM slice, fastMRI slice) under a folder or glob, "
                                "on Ray (a local instance by default)",
                           description="Options not listed here are options of 'aseqdip run' (of 'aseqdip "
                                       "reconstruct' for fastMRI files; of 'aseqdip volume' with --volumes), "
                                       "shared by every study: --method, --iterations, --size, --sigma, "
                                       "--acceleration, ...")
    batch.add_argument("--task", required=True, help=f"one of {', '.join(TASKS)}")
    batch.add_argument("--input", required=True, help="folder (searched recursively) or glob of studies")
    batch.add_argument("--out", required=True, help="output folder: one folder per study and results.csv")
    batch.add_argument("--executor", default="ray", help="ray (default) or serial (one at a time, in this process)")
    batch.add_argument("--address", default=None,
                       help="Ray cluster: auto or HOST:PORT (default: start a local instance for this batch)")
    batch.add_argument("--cpus-per-study", type=int, default=None,
                       help="CPU threads per study (default: 1 on Ray, all cores with --executor serial)")
    batch.add_argument("--gpus-per-study", type=float, default=0, help="GPUs per study on Ray (default 0)")
    batch.add_argument("--retries", type=int, default=2, help="retries of a study that crashed (default 2)")
    batch.add_argument("--checkpoint-every", type=int, default=500,
                       help="checkpoint each study every M iterations; a retried or rerun study resumes there "
                            "(default 500)")
    batch.add_argument("--no-progress", action="store_true", help="no progress bar")
    batch.add_argument("--volumes", action="store_true",
                       help="each study is a whole volume (a DICOM series folder, NIfTI, 3-D .npy, multi-frame DICOM, "
                            "fastMRI file) reconstructed as 'aseqdip volume' does; other options are its options")

    prior = sub.add_parser("prior", help="a learned start: fit a network initialisation on your own measurements")
    prior_sub = prior.add_subparsers(dest="prior_command", parser_class=_Parser, required=True)
    fit = prior_sub.add_parser(
        "fit", help="meta-learn a method's initial weights from measurements of one kind (Reptile)",
        description="Fits the initial weights of --method on the measurements under --input (images or DICOM "
                    "slices simulated through --task, or k-space files), with the method's own loss: no ground "
                    "truth. Writes weights.pt and prior.json; '--init OUT' of run, reconstruct, volume and batch "
                    "starts from it. Fit it on other files than the ones you will reconstruct.")
    fit.add_argument("--task", required=True, help=f"one of {', '.join(TASKS)}")
    fit.add_argument("--input", required=True, help="folder (searched recursively) or glob of images, DICOM slices or "
                                                    "k-space files of one kind")
    fit.add_argument("--out", required=True, help="output folder (new or empty): weights.pt and prior.json")
    fit.add_argument("--overwrite", action="store_true", help="replace --out, an earlier prior's folder, as a whole")
    fit.add_argument("--size", type=int, default=None, help="centre-crop images to a square, resize to SIZE x SIZE")
    fit.add_argument("--meta-steps", type=int, default=200, help="Reptile updates of the initial weights (default 200)")
    fit.add_argument("--steps-per-update", type=int, default=25,
                     help="steps of the method's own loop on one measurement per update (default 25)")
    fit.add_argument("--meta-lr", type=float, default=1.0,
                     help="outer step size, annealed linearly to 0 (default 1: Reptile's)")
    fit.add_argument("--checkpoint-every", type=int, default=10,
                     help="save the fit every M updates beside --out, for --resume (default 10)")
    fit.add_argument("--resume", action="store_true", help="continue an interrupted fit from its checkpoint")
    add_method_arguments(fit, checkpoints=False)
    add_task_arguments(fit, "add_arguments")

    demo = sub.add_parser("demo", help="aSeqDIP on scikit-image's astronaut, denoising (a few minutes on a laptop CPU)")
    demo.add_argument("--out", default="aseqdip-demo", help="output folder (default ./aseqdip-demo)")
    demo.add_argument("--size", type=int, default=64, help="image size (default 64)")
    demo.add_argument("--iterations", type=int, default=300, help="iterations (default 300)")
    demo.add_argument("--no-progress", action="store_true")
    return parser


def _summary(m: dict[str, Any], out: str) -> str:
    parts = [f"{m['method']} on {m['task']}"]
    if "recipe_trial" in m:  # the library's recipe as a trial (aseqdip.recipes.TRIALS)
        from .engine.stopping import NOISE_FREE  # the label the trial's rule gives noise-free data

        trial = m["recipe_trial"]
        kept = ("the data are noise-free" if NOISE_FREE in trial.get("rule", NOISE_FREE)
                else "the residual never came down to the estimated noise level")
        parts.append(f"recipe {m['recipe']['name']} (the trial of {trial['tried']} "
                     f"{'kept: ' + kept if trial['kept'] else 'found noise at step ' + str(trial['steps'])})")
    if "psnr_measurement" in m:
        parts.append(f"{m['measurement_is']} {m['psnr_measurement']:.2f} dB")
    if "psnr" in m:
        parts.append(f"returned {m['psnr']:.2f} dB / SSIM {m['ssim']:.3f} (iteration {m['iteration_returned']})")
    if "psnr_oracle_best" in m:
        parts.append(f"oracle best {m['psnr_oracle_best']:.2f} dB at {m['iteration_oracle_best']}")
    parts.append(f"{m['seconds']:.1f} s ({m['seconds_per_iteration'] * 1000:.0f} ms/it)")
    return "; ".join(parts) + f" -> {out}"


def command_demo(args: argparse.Namespace) -> dict[str, Any]:
    ns = build_parser().parse_args([
        "run", "--task", "denoise", "--image", "skimage:astronaut", "--size", str(args.size), "--sigma", "25",
        "--iterations", str(args.iterations), "--out", args.out, *(["--no-progress"] if args.no_progress else []),
        "--overwrite",  # a second demo replaces the first one's folder (never a folder of other files)
    ])
    print(f"aSeqDIP demo: scikit-image's astronaut at {args.size}x{args.size}, Gaussian noise sigma 25, "
          f"at most {args.iterations} iterations (the auto rule chooses when to stop)", flush=True)
    m = pipeline.run_simulated(run_options(ns))
    print(f"PSNR before (noisy): {m['psnr_measurement']:.2f} dB   after (aSeqDIP, {m['iterations']} steps): "
          f"{m['psnr']:.2f} dB")
    return m


def command_prior_fit(args: argparse.Namespace) -> dict[str, Any]:
    from .prior import PriorOptions, fit_prior

    prior = PriorOptions(input=args.input, meta_steps=args.meta_steps, steps_per_update=args.steps_per_update,
                         meta_lr=args.meta_lr, checkpoint_every=args.checkpoint_every)
    bar = None
    if not args.no_progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=args.meta_steps, desc="prior", unit="update", dynamic_ncols=True)

    def on_step(done: int, total: int, loss: float) -> None:
        if bar is not None:
            bar.n = done
            bar.set_postfix(loss=f"{loss:.3g}")
            bar.refresh()

    try:
        return fit_prior(run_options(args), prior, on_step=on_step)
    finally:
        if bar is not None:
            bar.close()


def _volume_summary(m: dict[str, Any], out: str) -> str:
    count = m["shape"][0]
    parts = [f"{m['method']} on a {m['task']} volume of {count} slice{'s' if count != 1 else ''} ({m['start']} start)"]
    if m.get("mean_psnr") is not None:
        parts.append(f"mean returned {m['mean_psnr']:.2f} dB / SSIM {m['mean_ssim']:.3f}")
    if m.get("mean_psnr_oracle_best") is not None:
        parts.append(f"mean oracle best {m['mean_psnr_oracle_best']:.2f} dB")
    parts.append(f"{m['total_steps']} steps, {m['total_seconds']:.1f} s (first slice {m['first_slice']['steps']} "
                 f"steps, {m['first_slice']['seconds']:.1f} s)")
    if m.get("shared_noise"):
        parts.append(f"noise level {m['shared_noise']['sigma']:.4g} for every slice "
                     f"(median of {len(m['shared_noise']['slices'])} slices' estimates)")
    return "; ".join(parts) + f" -> {out}"


def _slice_line(r: dict[str, Any]) -> None:
    quality = f", {r['psnr']:.2f} dB" if r.get("psnr") is not None else ""
    print(f"slice {r['index']} ({r['start']}): {r['steps']} steps, {r['wall_seconds']:.1f} s, {r['rule']}{quality}",
          flush=True)


def command_batch(args: argparse.Namespace, options: list[str]) -> int:
    from .batch import run_batch

    summary = run_batch(args.task, args.input, args.out, options, read_options=options_from_argv, executor=args.executor,
                        address=args.address, cpus_per_study=args.cpus_per_study, gpus_per_study=args.gpus_per_study,
                        retries=args.retries, checkpoint_every=None if args.volumes else args.checkpoint_every,
                        progress=not args.no_progress, volumes=args.volumes, describe_error=in_command_terms)
    print(summary.line())
    return 1 if summary.failed else 0


# The library names its parameters in Python terms (aseqdip.plan, the methods); the command says them as the
# flags that set them. One table: a library term -> the flag, in the order they are replaced.
FLAG_OF_PARAMETER: tuple[tuple[str, str], ...] = (
    ("OutputRule.noise='estimate'", "--sigma-from estimate"), ("OutputRule.noise='none'", "--sigma-from none"),
    ("OutputRule.noise", "--sigma-from"), ("OutputRule.sigma", "--sure-sigma (0-255 scale)"),
    ("OutputRule.ema", "--ema"), ("OutputRule.every", "--stop-every"), ("OutputRule.patience", "--stop-patience"),
    ("OutputRule.holdout", "--holdout"), ("OutputRule.window", "--es-window"), ("OutputRule.tau", "--tau"),
    ("OutputRule.confirm", "--confirm"),
    ("OutputRule.observe", "--observe"), ("OutputRule.stop", "--stop"), ("sure_sigma", "--sure-sigma"),
    ("use method dip", "use --method dip"),
)


def in_command_terms(message: str) -> str:
    """A library error's message with its parameter names replaced by the flags (:data:`FLAG_OF_PARAMETER`)."""
    message = re.sub(r"OutputRule\(stop='(\w+)'\)", r"--stop \1", message)
    message = re.sub(r"stop='(\w+)'", r"--stop \1", message)
    for term, flag in FLAG_OF_PARAMETER:
        message = message.replace(term, flag)
    return message


def main(argv: Sequence[str] | None = None) -> int:
    with _library_warnings_off_the_terminal():
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    try:
        args, rest = build_parser().parse_known_args(argv)
        if args.command == "batch":
            return command_batch(args, rest)
        if rest:
            raise UserInputError(f"unrecognized arguments: {' '.join(rest)}")
        if args.command == "prior":
            m = command_prior_fit(args)
            print(f"prior fitted on {len(m['files'])} files: {m['meta']['meta_steps']} updates of "
                  f"{m['meta']['steps_per_update']} steps, {m['meta']['seconds']:.1f} s -> {args.out} (use --init {args.out})")
        elif args.command == "volume":
            from .volume import run_volume

            m = run_volume(run_options(args), on_slice=None if args.no_progress else _slice_line)
            print(_volume_summary(m, args.out))
        elif args.command in ("run", "reconstruct"):
            m = pipeline.execute(run_options(args))
            print(_summary(m, args.out))
        elif args.command == "demo":
            m = command_demo(args)
            print(f"results in {Path(args.out).resolve()}")
    except UserInputError as exc:
        print(f"aseqdip: error: {in_command_terms(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except NonFiniteError as exc:
        print(f"aseqdip: error: {exc}; {exc.kept}", file=sys.stderr)
        return EXIT_NON_FINITE
    except StorageError as exc:
        print(f"aseqdip: error: {exc}; {exc.kept}", file=sys.stderr)
        return EXIT_STORAGE
    except KeyboardInterrupt as exc:
        note = exc.kept if isinstance(exc, Interrupted) else "interrupted before anything was written"
        print(f"aseqdip: {note}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


@contextlib.contextmanager
def _library_warnings_off_the_terminal() -> Iterator[None]:
    """Send Python warnings (deprecations, PIL's EXIF notes ...) to the ``aseqdip.warnings`` logger at
    DEBUG level instead of stderr, for this command only: the user sees aseqdip's own lines."""
    if os.environ.get("ASEQDIP_SHOW_WARNINGS"):
        yield
        return
    log = logging.getLogger("aseqdip.warnings")

    def to_log(message: Warning | str, category: type[Warning], filename: str, lineno: int, file: object = None,
               line: str | None = None) -> None:
        log.debug("%s:%s: %s: %s", filename, lineno, category.__name__, message)

    with warnings.catch_warnings():
        warnings.showwarning = to_log
        yield


if __name__ == "__main__":
    sys.exit(main())
