"""A learned start (``aseqdip prior fit``): one network initialisation meta-learned from a user's own measurements.

Every DIP-family run starts from random weights and spends its first hundreds of steps learning what every
image of its kind shares. A prior fitted once on measurements of one kind (a folder of images simulated
through a task, DICOM slices, fastMRI/ISMRMRD/twix files) starts every later study of that kind from weights
that have learned it already (MetaDIP, Zhang et al. 2022, arXiv 2209.08452, meta-learns DIP's initial weights
for about 10x shorter runs). The rule is first-order, Reptile's (Nichol, Achiam & Schulman 2018,
arXiv 1803.02999): pick one measurement, run the method's own loop on it for ``steps_per_update`` from the current
initialisation theta, and move theta towards where that run ended, theta += epsilon (phi - theta), with
epsilon annealed linearly from ``meta_lr`` to 0. The inner loop is the method's own loss on the measurement
alone, so no ground truth and no pretrained model enter: the prior is as dataless as the runs it starts.

Written here because no installed library runs Reptile over a reconstruction loop (learn2learn and higher
wrap a classifier's training step, not a callback-driven loop with its own optimisers); the update itself is
three lines. The result is a weights file in the format of ``--save-weights`` (``weights.pt``, read with
``torch.load(weights_only=True)``) beside ``prior.json``: ``--init PRIOR`` of ``run``, ``reconstruct``,
``volume`` and ``batch`` starts from it. Fitting is resumable (``--resume``: a checkpoint beside the output).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import __version__, pipeline
from .engine.callbacks import Callback
from .engine.state import LoopState
from .engine.warm import WarmStart, Weights, save_weights
from .errors import UserInputError
from .fingerprint import file_identity, plain
from .messages import warn
from .options import RunOptions
from .outputrule import OutputRule
from .report import cpu_model

PRIOR_FORMAT = "aseqdip prior 1"


@dataclass(frozen=True)
class PriorOptions:
    """How a prior is fitted: from the studies under ``input``, ``meta_steps`` Reptile updates of ``steps_per_update``
    steps each, outer step size ``meta_lr`` annealed to 0, a checkpoint every ``checkpoint_every`` updates."""

    input: str
    meta_steps: int = 200
    steps_per_update: int = 25
    meta_lr: float = 1.0
    checkpoint_every: int = 10


class _KeepStart(Callback):
    """Keeps the network's weights as the run starts (after a warm start loaded them): the Reptile step's theta."""

    def __init__(self) -> None:
        self.weights: dict[str, torch.Tensor] | None = None

    def on_start(self, state: LoopState) -> None:
        self.weights = {k: v.detach().cpu().clone() for k, v in state.net.state_dict().items()}


def _check(prior: PriorOptions) -> None:
    if prior.meta_steps < 1:
        raise UserInputError(f"--meta-steps must be at least 1, got {prior.meta_steps}")
    if prior.steps_per_update < 1:
        raise UserInputError(f"--steps-per-update must be at least 1, got {prior.steps_per_update}")
    if not 0.0 < prior.meta_lr <= 1.0:
        raise UserInputError(f"--meta-lr must lie in (0, 1], got {prior.meta_lr}")
    if prior.checkpoint_every < 1:
        raise UserInputError(f"--checkpoint-every must be at least 1, got {prior.checkpoint_every}")


def measurements(options: RunOptions, prior: PriorOptions, task: Any, task_cls: type) -> tuple[list[Any], list[Path]]:
    """The problems the prior learns from: each image or DICOM slice under ``prior.input`` simulated through the
    task (seed + its index), each k-space slice as measured. Their ground truths are dropped: nothing reads them."""
    from .batch.studies import find_studies

    found = find_studies(prior.input, exclude=Path(options.out))
    if not found.studies:
        raise UserInputError(f"--input {prior.input}: no images, DICOM slices or k-space files found")
    problems, files = [], []
    for i, study in enumerate(found.studies):
        if study.kind == "kspace":
            measured = {**options.task_options, "kspace": str(study.source), "slice": study.slice_index, "maps": None}
            problem = task_cls.from_measurement(seed=options.seed + i, **measured)
        else:
            problem = task.simulate(task.load(str(study.source), size=options.size), seed=options.seed + i)
        problem.x_true = None  # the prior sees measurements only
        problems.append(problem)
        if study.source not in files:
            files.append(study.source)
    return problems, files


def fit_prior(options: RunOptions, prior: PriorOptions,
              on_step: Callable[[int, int, float], None] | None = None) -> dict[str, Any]:
    """Fit a prior for ``options``' task and method on the measurements under ``prior.input``; write
    ``weights.pt`` and ``prior.json`` into ``options.out`` and return prior.json's contents.

    ``on_step(done, total, loss)`` is called after each Reptile update with the inner run's last loss."""
    from .io import StagedOutput
    from .io.outputs import write_json
    from .preflight import check_output
    from .rules import reconstruct
    from .volume.defaults import warm_method

    _check(prior)
    task_cls = pipeline.task_class(options)
    task = pipeline.make_task(options, task_cls)
    method = pipeline.make_method(options, task_cls)
    if not hasattr(method, "build_network"):
        raise UserInputError(f"a prior is a network's initialisation; {method.name} has no network")
    check_output(Path(options.out), overwrite=options.overwrite, inputs=[Path(prior.input)])
    problems, files = measurements(options, prior, task, task_cls)
    inner = warm_method(method, prior.steps_per_update)  # a copy: this many steps, no warm-up, no ramp
    inner.progress = False
    checkpoint = pipeline.checkpoint_path(options.out)
    fingerprint = {"aseqdip version": __version__, "task": options.task, "method": method.name,
                   "hyperparameters": method.hyperparameters(), "size": options.size, "seed": options.seed,
                   "prior": prior.__dict__ | {"input": None},
                   "files": {str(f): file_identity(f) for f in files}}
    theta, step, losses, seconds = None, 0, [], 0.0
    if checkpoint.exists():
        if not options.resume:
            raise UserInputError(f"a checkpoint of an earlier fit into --out {options.out} is at {checkpoint}: add "
                                 f"--resume to continue it, or delete that file to start afresh")
        saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
        if saved.get("fingerprint") != plain(fingerprint):
            raise UserInputError(f"{checkpoint} belongs to another fit (other options or files); delete it to start "
                                 f"afresh")
        theta, step, losses, seconds = saved["theta"], int(saved["step"]), list(saved["losses"]), float(saved["seconds"])
    order = np.random.default_rng(options.seed)
    picks = order.integers(len(problems), size=prior.meta_steps)  # drawn once, so a resumed fit picks the same
    while step < prior.meta_steps:
        began = time.perf_counter()
        problem = problems[int(picks[step])]
        start, warm = _KeepStart(), WarmStart(None if theta is None else Weights(theta))
        result = reconstruct(inner, problem.y, problem.physics, OutputRule(stop="none"), x0=problem.x0,
                             callbacks=[warm, start], track_every=prior.steps_per_update, hints=problem.hints)
        assert warm.final is not None and start.weights is not None
        epsilon = prior.meta_lr * (1.0 - step / prior.meta_steps)
        theta = {k: (v + epsilon * (warm.final.network[k] - v) if v.is_floating_point() else warm.final.network[k])
                 for k, v in start.weights.items()}
        losses.append(float(result.history["loss"][-1]) if result.history.get("loss") else float("nan"))
        step += 1
        seconds += time.perf_counter() - began
        if on_step is not None:
            on_step(step, prior.meta_steps, losses[-1])
        if step % prior.checkpoint_every == 0 and step < prior.meta_steps:
            _save_checkpoint(checkpoint, theta, step, losses, seconds, fingerprint)
    ratios = [start_residual_ratio(theta, inner, problem) for problem in problems]
    ratios = [r for r in ratios if r is not None]
    copies = bool(ratios) and float(np.median(ratios)) < 1.0
    if copies:
        warn("the prior reproduces its own measurements closer than their noise level (median first residual "
             f"{float(np.median(ratios)):.2f} sigma^2): runs started from it begin below the noise level, where "
             "auto's rule cannot tell a fit from an over-fit; fit it with fewer --steps-per-update or --meta-steps")
    record = {"format": PRIOR_FORMAT, "task": options.task, "method": method.name,
              "network": method.hyperparameters().get("network"),
              "hyperparameters": method.hyperparameters(), "image_size": options.size, "seed": options.seed,
              "task_options": {k: v for k, v in options.task_options.items() if v is not None},
              "meta": {"rule": "Reptile (first order)", "meta_steps": prior.meta_steps,
                       "steps_per_update": prior.steps_per_update, "meta_lr": prior.meta_lr, "annealing": "linear to 0",
                       "total_steps": prior.meta_steps * prior.steps_per_update, "seconds": round(seconds, 3)},
              "files": fingerprint["files"], "inner_final_loss": [round(v, 8) for v in losses],
              "first_residual_over_noise": {"median": round(float(np.median(ratios)), 4) if ratios else None,
                                            "per_measurement": [round(r, 4) for r in ratios],
                                            "copies_its_measurements": copies},
              "environment": {"aseqdip": __version__, "torch": torch.__version__, "cpu": cpu_model(),
                              "torch_threads": torch.get_num_threads(), "command": " ".join(sys.argv)},
              "note": "fitted on measurements only (no ground truth); evaluate it on other files than these"}
    with StagedOutput(options.out, replace=options.overwrite) as out:
        save_weights(out.path("weights.pt"), Weights(theta),
                     {"method": method.name, "hyperparameters": method.hyperparameters(), "task": options.task,
                      "prior": True, "fitted_on": len(files)})
        write_json(out.path("prior.json"), record)
    checkpoint.unlink(missing_ok=True)
    return record


def start_residual_ratio(theta: dict[str, torch.Tensor], method: Any, problem: Any) -> float | None:
    """The mean squared residual ||A f(z_0) - y||^2 of a run started from ``theta`` on ``problem``, before any step,
    over the measurement's estimated noise level sigma^2 (None where no level can be estimated).

    Below 1, the start already fits the data closer than the noise: the network copies its input (aSeqDIP's
    input is the measurement itself), and the discrepancy rule, which waits for the residual to rise above the
    noise level and fall back to it, never arms."""
    from .engine.stopping import mean_residual
    from .physics.holdout import measured_entries
    from .physics.noise_level import noise_level

    try:
        sigma = noise_level(problem.physics, problem.y, prefer="estimate", hints=problem.hints).sigma
    except ValueError:
        return None
    from .rules import reconstruct
    from .volume.defaults import warm_method

    first, seen = warm_method(method, 1), _FirstOutput()
    reconstruct(first, problem.y, problem.physics, OutputRule(stop="none"), x0=problem.x0,
                callbacks=[WarmStart(Weights(theta)), seen], track_every=1, hints=problem.hints)
    if seen.output is None or not sigma > 0:
        return None
    measured = measured_entries(problem.physics, problem.y)
    return float(mean_residual(problem.physics, problem.y, seen.output, measured)) / sigma**2


class _FirstOutput(Callback):
    """Keeps the network's output at the run's first step (computed from the start's weights)."""

    def __init__(self) -> None:
        self.output: torch.Tensor | None = None

    def on_step(self, state: LoopState) -> None:
        if self.output is None:
            self.output = state.output.detach().clone()


def _save_checkpoint(path: Path, theta: dict[str, torch.Tensor], step: int, losses: list[float], seconds: float,
                     fingerprint: dict[str, Any]) -> None:
    from .io.outputs import atomic_write

    payload = {"theta": theta, "step": step, "losses": losses, "seconds": seconds, "fingerprint": plain(fingerprint)}
    atomic_write(path, lambda f: torch.save(payload, f))
