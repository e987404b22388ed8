"""Stopping and output rules for any network method and any task, chosen by name (CLI ``--stop``, ``--ema``).

:func:`reconstruct` runs a method under an :class:`OutputRule`: it plans the run
(:func:`aseqdip.plan.make_plan`; one clear :class:`UserInputError` when the rule cannot apply), builds
the rule's callbacks, splits the measurements for held-out validation, and optionally refits on all
measurements. None of the rules
sees the ground truth; the ``monitor`` (PSNR against it) is recorded only as the oracle curve.

Rules (references and measured behaviour in docs/stopping.md):

* ``none``: the method's own output after the full budget (the paper's fixed budget for aSeqDIP);
* ``selfval``: held-out validation (:mod:`aseqdip.engine.validation`);
* ``wmv``: ES-WMV (:class:`aseqdip.engine.stopping.WindowedMovingVariance`);
* ``discrepancy``: the discrepancy principle (:class:`aseqdip.engine.stopping.Discrepancy`);
* ``sure``: Monte-Carlo SURE for Gaussian denoising (:mod:`aseqdip.engine.sure`);
* ``ema``: an exponential moving average of the estimates, alone or watched by any rule above;
* ``auto`` (the default): a rule (and a ramp) chosen per method by measurement (:mod:`aseqdip.auto`).

Any of ``discrepancy``, ``discrepancy_ema``, ``wmv`` and ``sure`` can also *observe* a run
(``OutputRule.observe``): it records the step and image it would have chosen without stopping anything
(:mod:`aseqdip.engine.observe`), so one run to the ceiling compares them all.

What runs is resolved once, before the run, by :func:`aseqdip.plan.make_plan`: ``auto``, the checks of
the rule against the method's capabilities, and the noise level that ``discrepancy`` and ``sure`` need
(given, the physics' model, or estimated from y), recorded in ``info["noise"]``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import torch

from .engine.callbacks import Callback, TrackMetric
from .engine.observe import Chain, Observer
from .engine.precision import resolve_device
from .engine.state import LoopState, Reconstruction
from .engine.stopping import Discrepancy, ExponentialAverage, WindowedMovingVariance, mean_residual
from .engine.sure import MonteCarloSURE
from .engine.validation import HeldOutValidation
from .errors import UserInputError
from .outputrule import (
    DEFAULT_EVERY,
    DEFAULT_PATIENCE,
    NOISE_SOURCES,
    OBSERVABLE,
    OBSERVED_EMA,
    STOP_RULES,
    OutputRule,
    needs_noise,
)
from .physics.defaults import first_estimate
from .physics.hints import MeasurementHints
from .physics.holdout import measured_entries, split_measurements
from .physics.noise_level import NoiseLevel
from .physics.placement import to_device
from .plan import Plan, check, make_plan, resolve_noise

__all__ = ["DEFAULT_EVERY", "DEFAULT_PATIENCE", "NOISE_SOURCES", "OBSERVABLE", "OBSERVED_EMA", "STOP_RULES",
           "OutputRule", "Plan", "callbacks_for", "check", "make_plan", "needs_noise", "observers_for",
           "reconstruct", "resolve_noise"]

def callbacks_for(rule: OutputRule, method: Any, y: torch.Tensor, physics: Any,
                  noise: NoiseLevel | None = None) -> tuple[list[Callback], Callable[[LoopState], torch.Tensor]]:
    """The callbacks of ``rule`` (bar the held-out split), EMA first, and the estimate the rule watches."""
    out: list[Callback] = []
    watch: Callable[[LoopState], torch.Tensor] = method.estimate
    if rule.ema is not None and rule.stop != "sure":  # SURE averages its twin runs as well, so it averages itself
        average = ExponentialAverage(method.estimate, rule.ema)
        out.append(average)
        watch = average.current
    every = rule.every or DEFAULT_EVERY.get(rule.stop, 1)
    patience = rule.patience or DEFAULT_PATIENCE.get(rule.stop, 1)
    if rule.stop == "wmv":
        out.append(WindowedMovingVariance(watch, window=rule.window, patience=patience))
    elif rule.stop == "discrepancy":
        out.append(Discrepancy(watch, _sigma(noise), tau=rule.tau, measured=measured_entries(physics, y),
                               every=every, halt=rule.halt, confirm=rule.confirm))
    elif rule.stop == "sure":
        sure = MonteCarloSURE(method, _sigma(noise), alpha=rule.alpha, pairs=rule.pairs,
                              every=every, patience=patience, decay=rule.ema, halt=rule.halt, seed=rule.seed)
        out.append(sure)
        watch = sure.estimate
    return out, watch


def _sigma(noise: NoiseLevel | None) -> float:
    if noise is None:
        raise ValueError("this rule needs the noise level: resolve it with resolve_noise")
    return noise.sigma


def observers_for(rule: OutputRule, method: Any, y: torch.Tensor, physics: Any,
                  noise: NoiseLevel | None, track_every: int = 1) -> list[Callback]:
    """An :class:`Observer` for each rule in ``rule.observe``, each with the settings ``rule`` gives it
    (``residual`` is a curve recorded every ``track_every`` steps, not a rule)."""
    out: list[Callback] = []
    every = rule.every or 1
    for name in rule.observe:
        if name == "residual":  # a curve, not a rule: it records and never chooses
            measured = measured_entries(physics, y)
            out.append(TrackMetric(lambda x, m=measured: mean_residual(physics, y, x, m), method.estimate,
                                   "residual", track_every))
            continue
        if name == "wmv":
            part: Callback = WindowedMovingVariance(method.estimate, window=rule.window,
                                                    patience=rule.patience or DEFAULT_PATIENCE["wmv"])
        elif name in ("discrepancy", "discrepancy_ema"):
            watch = method.estimate
            average = None
            if name == "discrepancy_ema":
                average = ExponentialAverage(method.estimate, OBSERVED_EMA)
                watch = average.current
            part = Discrepancy(watch, _sigma(noise), tau=rule.tau, measured=measured_entries(physics, y), every=every,
                               label=name)
            if average is not None:
                part = Chain(average, part)
        else:  # sure
            part = MonteCarloSURE(method, _sigma(noise), alpha=rule.alpha, pairs=rule.pairs,
                                  every=rule.every or DEFAULT_EVERY["sure"],
                                  patience=rule.patience or DEFAULT_PATIENCE["sure"], seed=rule.seed)
        out.append(Observer(name, part))
    return out


def reconstruct(method: Any, y: torch.Tensor, physics: Any, rule: OutputRule | None = None, *,
                x0: torch.Tensor | None = None, monitor: Callable[[torch.Tensor], torch.Tensor] | None = None,
                callbacks: Sequence[Callback] = (), track_every: int = 1,
                score: Callable[[torch.Tensor], dict[str, float]] | None = None,
                hints: MeasurementHints | None = None, **kwargs: Any) -> Reconstruction:
    """``method.reconstruct`` under ``rule``; ``Reconstruction.rule`` and ``info["stopping"]`` say what chose the image.

    With an EMA and a ``monitor``, the history also holds ``psnr_ema``: the oracle curve of the average.
    ``info["noise"]`` records the noise level a rule used and where it came from; ``info["observed"]``
    what each observed rule would have done, scored by ``score`` (else ``monitor``) when given: the
    observed rule chose without the truth, the score only rates its choice. ``hints`` holds what the task
    knows of the acquisition (:class:`~aseqdip.physics.hints.MeasurementHints`). ``OutputRule(stop="auto")``
    (the default, ``rule=None``) is resolved once with everything else by :func:`aseqdip.plan.make_plan`;
    ``OutputRule(stop="none")`` runs the method's fixed budget exactly (for aSeqDIP the paper's).
    ``Reconstruction.hyperparameters`` are those of the method as it ran (auto's ramp included).
    """
    physics, y, x0 = _on_run_device(method, physics, y, x0)
    plan = make_plan(method, rule, physics, y, hints)
    result = _reconstruct(plan, y, physics, x0=x0, monitor=monitor, callbacks=callbacks,
                          track_every=track_every, score=score, **kwargs)
    if plan.auto is not None:
        result.info["stopping"]["auto"] = plan.auto
    result.hyperparameters = plan.method.hyperparameters()
    return result


def _on_run_device(method: Any, physics: Any, y: torch.Tensor,
                   x0: torch.Tensor | None) -> tuple[Any, torch.Tensor, torch.Tensor | None]:
    """The operator, y and x0 on the method's device, before any rule uses them.

    The loop moves the operator there anyway (in place); the rules' own uses of y around the run (the
    residual observer, self-validation's refit, the noise estimate) must then find y there too.
    """
    name = getattr(method, "device_name", None)
    if name is None:
        return physics, y, x0
    device = resolve_device(name)
    return to_device(physics, device), y.to(device), None if x0 is None else x0.to(device)


def _reconstruct(plan: Plan, y: torch.Tensor, physics: Any, *, x0: torch.Tensor | None,
                 monitor: Callable[[torch.Tensor], torch.Tensor] | None, callbacks: Sequence[Callback],
                 track_every: int, score: Callable[[torch.Tensor], dict[str, float]] | None,
                 **kwargs: Any) -> Reconstruction:
    method, rule, noise = plan.method, plan.rule, plan.noise
    kwargs["track_every"] = track_every
    if plan.plain:
        result = method.reconstruct(y, physics, x0=x0, monitor=monitor, callbacks=callbacks, **kwargs)
        result.info["stopping"] = rule.describe()
        return result
    method.validate(y, physics)  # the method's own checks on the full problem (e.g. dc_update's operator)
    if rule.stop == "selfval":
        if rule.observe:
            raise UserInputError("OutputRule.observe cannot watch a stop='selfval' run (its fit sees only the "
                                 "training split)")
        return _self_validated(method, y, physics, rule, monitor=monitor, callbacks=callbacks, **kwargs)
    extra, watch = callbacks_for(rule, method, y, physics, noise)
    observers = observers_for(rule, method, y, physics, noise, track_every)
    result = method.reconstruct(y, physics, x0=x0, monitor=monitor,
                                callbacks=[*callbacks, *extra, *observers,
                                           *_ema_monitor(rule, monitor, watch, track_every)], **kwargs)
    if noise is not None:
        result.info["noise"] = noise.describe()
    if any(isinstance(o, Observer) for o in observers):
        rate = score or (None if monitor is None else (lambda x: {"psnr": float(monitor(x))}))
        result.info["observed"] = {o.label: o.record(result.iterations, rate) for o in observers
                                   if isinstance(o, Observer)}
    return _labelled(result, rule)


def _ema_monitor(rule: OutputRule, monitor: Callable | None, watch: Callable, every: int) -> list[Callback]:
    """The oracle curve of the averaged estimates (for plots and studies; it chooses nothing)."""
    if rule.ema is None or monitor is None:
        return []
    return [TrackMetric(monitor, watch, "psnr_ema", every)]


def _labelled(result: Reconstruction, rule: OutputRule) -> Reconstruction:
    """Name the EMA in the rule label when a stopping rule watched it, and record the settings."""
    if rule.ema is not None and rule.stop != "none" and "ema" not in result.rule:
        result.rule = f"{result.rule} of ema({rule.ema:g})"
    result.info["stopping"] = rule.describe()
    return result


def _self_validated(method: Any, y: torch.Tensor, physics: Any, rule: OutputRule, *,
                    monitor: Callable | None, callbacks: Sequence[Callback], **kwargs: Any) -> Reconstruction:
    """Fit on the training split, pick the iterate with the least held-out residual, optionally refit."""
    split = split_measurements(physics, y, rule.holdout, torch.Generator().manual_seed(rule.seed))
    extra, watch = callbacks_for(rule, method, split.y, split.physics)
    validation = HeldOutValidation(watch, physics, y, split.held, every=rule.every or DEFAULT_EVERY["selfval"],
                                   patience=rule.patience or DEFAULT_PATIENCE["selfval"], halt=rule.halt)
    with torch.no_grad():
        x0 = first_estimate(split.physics, split.y)  # from the training entries only: no held-out value in z_0
    tracked = _ema_monitor(rule, monitor, watch, kwargs["track_every"])
    result = method.reconstruct(split.y, split.physics, x0=x0, monitor=monitor,
                                callbacks=[*callbacks, *extra, validation, *tracked], **kwargs)
    result = _labelled(result, rule)
    result.info["stopping"]["held_out_entries"] = int(split.held.sum())
    if not rule.refit:
        return result
    found = max(int(result.iteration_returned), 1)
    refit = copy.copy(method)  # the same settings with the budget self-validation found
    refit.iterations = found
    averaged, watch = callbacks_for(OutputRule(ema=rule.ema), refit, y, physics)
    tracked = _ema_monitor(rule, monitor, watch, kwargs["track_every"])
    plain = {k: v for k, v in kwargs.items() if k not in ("checkpoint", "checkpoint_every", "resume")}  # not resumable
    final = refit.reconstruct(y, physics, monitor=monitor, callbacks=[*callbacks, *averaged, *tracked], **plain)
    final.rule = f"{result.rule}, refit on all measurements"
    final.iteration_returned = found
    final.info["stopping"] = result.info["stopping"]
    final.info["selfval_run"] = {"iterations": result.iterations, "iteration_returned": result.iteration_returned,
                                 "stop_reason": result.info.get("stop_reason", ""), "seconds": result.seconds}
    final.history.update({k: v for k, v in result.history.items() if k.startswith("selfval")})
    final.seconds += result.seconds  # both runs' steps are timed, so seconds per step counts both
    final.steps_timed = final.steps_in_seconds + result.steps_in_seconds
    return final
