"""Stopping and output rules for any network method and any task, chosen by name (CLI ``--stop``, ``--ema``).

:func:`reconstruct` runs a method under an :class:`OutputRule`: it checks that the rule can apply to this
method and operator (one clear :class:`UserInputError` when not), builds the rule's callbacks, splits
the measurements for held-out validation, and optionally refits on all measurements. None of the rules
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

The noise level that ``discrepancy`` and ``sure`` need is resolved once per run by
:func:`aseqdip.physics.noise_level.noise_level` (given, the physics' model, or estimated from y) and
recorded in ``info["noise"]``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import deepinv as dinv
import torch

from .engine.callbacks import Callback, TrackMetric
from .engine.observe import Chain, Observer
from .engine.precision import resolve_device
from .engine.state import LoopState, Reconstruction
from .engine.stopping import Discrepancy, ExponentialAverage, WindowedMovingVariance, mean_residual
from .engine.sure import MonteCarloSURE
from .engine.validation import HeldOutValidation
from .errors import UserInputError
from .methods.base import DIPMethod
from .methods.esdip import ESDIP
from .methods.rethinking import RethinkingDIP
from .physics.defaults import first_estimate
from .physics.holdout import measured_entries, split_measurements
from .physics.noise_level import NoiseLevel, noise_level
from .physics.placement import to_device

STOP_RULES = ("auto", "none", "selfval", "wmv", "discrepancy", "sure")
OBSERVABLE = ("discrepancy", "discrepancy_ema", "wmv", "sure", "residual")
NOISE_SOURCES = ("model", "estimate", "none")  # none: the data taken as noise-free (level 0)
OBSERVED_EMA = 0.9  # the decay of the average that ``discrepancy_ema`` watches
DEFAULT_EVERY = {"selfval": 5, "sure": 5, "discrepancy": 1}
DEFAULT_PATIENCE = {"selfval": 500, "sure": 500, "wmv": 1000}


@dataclass(frozen=True)
class OutputRule:
    """Which rule decides the returned image, with its settings (None: the rule's default).

    ``sigma`` is the noise std per measured entry in data units (None: from ``noise``: ``"model"`` reads the
    physics' Gaussian noise model, ``"estimate"`` estimates it from y and never reads the model, ``"none"``
    takes the data as noise-free, level 0).
    ``observe`` names rules that watch the run without stopping it (``OBSERVABLE``). ``holdout`` is the fraction of measured locations held out by ``selfval``; ``refit``
    reruns the method on all measurements for the budget self-validation found. ``halt=False`` keeps the
    run going after a rule has decided (to compare rules along one run). ``seed`` draws the held-out set
    and SURE's probe.
    """

    stop: str = "none"
    ema: float | None = None
    holdout: float = 0.1
    refit: bool = False
    every: int | None = None
    patience: int | None = None
    window: int = 100
    tau: float = 1.0
    sigma: float | None = None
    alpha: float = 0.5
    pairs: int = 1
    halt: bool = True
    seed: int = 0
    noise: str = "model"
    observe: tuple[str, ...] = ()

    def describe(self) -> dict[str, Any]:
        """The settings that matter for this rule (for metrics.json)."""
        keep = {"stop", "ema", "observe"} | {
            "selfval": {"holdout", "refit", "every", "patience", "seed"}, "wmv": {"window", "patience"},
            "discrepancy": {"tau", "sigma", "every", "noise"},
            "sure": {"sigma", "alpha", "pairs", "every", "patience", "seed", "noise"},
        }.get(self.stop, set())
        out = {k: v for k, v in asdict(self).items() if k in keep}
        out["observe"] = list(self.observe)
        if "every" in out and out["every"] is None:
            out["every"] = DEFAULT_EVERY[self.stop]
        if "patience" in out and out["patience"] is None:
            out["patience"] = DEFAULT_PATIENCE[self.stop]
        return out


def needs_noise(rule: OutputRule) -> bool:
    """True when the rule (or one it observes) compares a residual with the noise level."""
    return rule.stop in ("discrepancy", "sure") or any(name not in ("wmv", "residual") for name in rule.observe)


def resolve_noise(rule: OutputRule, physics: Any, y: torch.Tensor, hint: dict[str, Any] | None = None) -> NoiseLevel:
    """The noise level the rule uses: ``rule.sigma`` if given, else the model or the estimate (``rule.noise``)."""
    what = f"--stop {rule.stop}" if rule.stop in ("discrepancy", "sure") else "the observed rules"
    if rule.sigma is not None and not rule.sigma > 0:
        raise UserInputError(f"{what}: the noise level must be positive, got {rule.sigma:g}")
    if rule.sigma is None and rule.noise == "none":
        if rule.stop == "sure" or "sure" in rule.observe:
            raise UserInputError(f"{what}: SURE needs a noise level above 0; --sigma-from none is for the discrepancy "
                                 f"principle")
        return NoiseLevel(0.0, "none", "the data taken as noise-free (level 0): the discrepancy principle runs to the "
                                       "budget and returns the iterate with the smallest residual")
    if rule.sigma is None and rule.noise == "model":
        level = noise_level(physics, y, prefer="model", hint=hint)
        if level.source not in ("model", "file"):
            raise UserInputError(f"{what} needs the noise level: this measurement has no Gaussian noise of known "
                                 f"sigma > 0; give it with --sure-sigma (0-255 scale) or use --sigma-from estimate")
        return level
    try:
        level = noise_level(physics, y, given=rule.sigma, prefer="estimate", hint=hint)
    except ValueError as exc:
        raise UserInputError(f"{what}: {exc}") from None
    scale = float(y.detach().abs().max()) if y.numel() else 0.0
    if not level.sigma > 1e-6 * scale:  # an estimate at round-off level: the data hold no measurable noise
        raise UserInputError(f"{what}: the noise level estimated from the measurement is 0 (noise-free data?); "
                             f"give it with --sure-sigma (0-255 scale)")
    return level


def check(rule: OutputRule, method: Any, physics: Any) -> None:
    """Refuse, in one line, a rule that cannot apply to this method or operator."""
    if rule.stop not in STOP_RULES:
        raise UserInputError(f"unknown stopping rule {rule.stop!r}; choose from {', '.join(STOP_RULES)}")
    if rule.stop == "auto":
        raise ValueError("resolve stop='auto' with aseqdip.auto.resolve before checking the rule")
    if rule.noise not in NOISE_SOURCES:
        raise UserInputError(f"--sigma-from must be one of {', '.join(NOISE_SOURCES)}, got {rule.noise!r}")
    unknown = [name for name in rule.observe if name not in OBSERVABLE]
    if unknown:
        raise UserInputError(f"cannot observe {', '.join(unknown)}; observable rules: {', '.join(OBSERVABLE)}")
    if rule.stop == "none" and rule.ema is None and not rule.observe:
        return
    what = f"--stop {rule.stop}" if rule.stop != "none" else ("--ema" if rule.ema is not None else "--observe")
    if not isinstance(method, DIPMethod):
        raise UserInputError(f"{what} applies to the network methods; {method.name} has no iterations to choose from")
    if isinstance(method, ESDIP):
        raise UserInputError(f"{what}: method esdip already stops by ES-WMV; use --method dip with --stop/--ema")
    if rule.ema is not None and not 0.0 <= rule.ema < 1.0:
        raise UserInputError(f"--ema must lie in [0, 1), got {rule.ema:g}")
    if rule.every is not None and rule.every < 1:
        raise UserInputError(f"--stop-every must be at least 1, got {rule.every}")
    if rule.patience is not None and rule.patience < 1:
        raise UserInputError(f"the stopping patience must be at least 1 step, got {rule.patience}")
    if rule.stop == "selfval":
        if not 0.0 < rule.holdout <= 0.5:
            raise UserInputError(f"--holdout must lie in (0, 0.5], got {rule.holdout:g}")
        if isinstance(method, RethinkingDIP):
            raise UserInputError("--stop selfval cannot apply to rethinking: its SURE loss uses every pixel of y "
                                 "(use --stop sure or another method)")
    elif rule.stop == "wmv" and rule.window < 2:
        raise UserInputError(f"the ES-WMV window must hold at least 2 iterates, got {rule.window}")
    elif rule.stop == "discrepancy" and not rule.tau > 0:
        raise UserInputError(f"--tau must be positive, got {rule.tau:g}")
    if (rule.stop == "sure" or "sure" in rule.observe) and not isinstance(physics, dinv.physics.Denoising):
        raise UserInputError(f"--stop sure is for Gaussian denoising (identity operator); this problem's operator "
                             f"is {type(physics).__name__}")


def callbacks_for(rule: OutputRule, method: DIPMethod, y: torch.Tensor, physics: Any,
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
        out.append(Discrepancy(watch, _sigma(noise), tau=rule.tau,
                               measured=measured_entries(physics, y), every=every, halt=rule.halt))
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


def observers_for(rule: OutputRule, method: DIPMethod, y: torch.Tensor, physics: Any,
                  noise: NoiseLevel | None, track_every: int = 1) -> list[Callback]:
    """An :class:`Observer` for each rule in ``rule.observe``, each with the settings ``rule`` gives it
    (``residual`` is a curve recorded every ``track_every`` steps, not a rule)."""
    out: list[Callback] = []
    every = rule.every or 1
    for name in rule.observe:
        if name == "residual":  # a curve, not a rule: it records and never chooses
            measured = measured_entries(physics, y)
            out.append(TrackMetric(lambda x: mean_residual(physics, y, x, measured), method.estimate, "residual",
                                   track_every))
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
                noise_hint: dict[str, Any] | None = None, **kwargs: Any) -> Reconstruction:
    """``method.reconstruct`` under ``rule``; ``Reconstruction.rule`` and ``info["stopping"]`` say what chose the image.

    With an EMA and a ``monitor``, the history also holds ``psnr_ema``: the oracle curve of the average.
    ``info["noise"]`` records the noise level a rule used and where it came from; ``info["observed"]``
    what each observed rule would have done, scored by ``score`` (else ``monitor``) when given: the
    observed rule chose without the truth, the score only rates its choice. ``noise_hint`` holds the
    acquisition settings a noise estimator may use (the CT task's photon count). ``OutputRule(stop="auto")``
    is resolved by :mod:`aseqdip.auto`; it is the default (``rule=None``). ``OutputRule(stop="none")`` runs
    the method's fixed budget exactly (for aSeqDIP the paper's).
    """
    from .auto import DEFAULT_STOP, apply_to, resolve

    rule = OutputRule(stop=DEFAULT_STOP) if rule is None else rule
    physics, y, x0 = _on_run_device(method, physics, y, x0)
    auto_record = None
    if rule.stop == "auto":
        auto_settings, rule = resolve(method.name, rule, physics, noise_hint)
        auto_record = {"method": auto_settings}
        rule, fallback = _auto_without_noise_level(rule, method, physics, y, noise_hint)
        if fallback:
            auto_record["fallback"] = fallback
        method = apply_to(method, auto_settings)
    result = _reconstruct(method, y, physics, rule, x0=x0, monitor=monitor, callbacks=callbacks,
                          track_every=track_every, score=score, noise_hint=noise_hint, **kwargs)
    if auto_record is not None:
        result.info["stopping"]["auto"] = auto_record
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


def _auto_without_noise_level(rule: OutputRule, method: Any, physics: Any, y: torch.Tensor,
                              hint: dict[str, Any] | None) -> tuple[OutputRule, str]:
    """auto's rule, or the fixed budget when no noise level can be found for it (and why).

    ``auto`` is the default for any deepinv operator, including ones no estimator knows or noise-free data;
    there it runs the method as published rather than refusing, and says so (metrics.json ->
    ``stopping.auto.fallback``).
    """
    if rule.stop == "none" or not needs_noise(rule) or not isinstance(method, DIPMethod):
        return rule, ""
    try:
        resolve_noise(rule, physics, y, hint)
    except UserInputError as exc:
        from .messages import warn

        reason = f"no noise level for the auto rule ({exc}); ran the fixed budget instead"
        warn(f"--stop auto: {reason}")
        kept = tuple(name for name in rule.observe if name in ("wmv", "residual"))  # the ones that need no sigma
        return OutputRule(**{**asdict(rule), "stop": "none", "ema": None, "observe": kept}), reason
    return rule, ""


def _reconstruct(method: Any, y: torch.Tensor, physics: Any, rule: OutputRule, *, x0: torch.Tensor | None,
                 monitor: Callable[[torch.Tensor], torch.Tensor] | None, callbacks: Sequence[Callback],
                 track_every: int, score: Callable[[torch.Tensor], dict[str, float]] | None,
                 noise_hint: dict[str, Any] | None, **kwargs: Any) -> Reconstruction:
    check(rule, method, physics)
    kwargs["track_every"] = track_every
    if rule.stop == "none" and rule.ema is None and not rule.observe:
        result = method.reconstruct(y, physics, x0=x0, monitor=monitor, callbacks=callbacks, **kwargs)
        result.info["stopping"] = rule.describe()
        return result
    method.validate(y, physics)  # the method's own checks on the full problem (e.g. --dc-update's operator)
    if rule.stop == "selfval":
        if rule.observe:
            raise UserInputError("--observe cannot watch a --stop selfval run (its fit sees only the training split)")
        return _self_validated(method, y, physics, rule, monitor=monitor, callbacks=callbacks, **kwargs)
    noise = resolve_noise(rule, physics, y, noise_hint) if needs_noise(rule) else None
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


def _self_validated(method: DIPMethod, y: torch.Tensor, physics: Any, rule: OutputRule, *,
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
