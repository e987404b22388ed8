"""A run's plan, resolved once: the method as it will run, the concrete rule, and the noise level with its source.

:func:`make_plan` is the one place that turns what the caller asked for (a method, an :class:`OutputRule`
that may say ``auto``, the operator, y and what the task knows of the acquisition) into what runs:

* ``auto`` resolved (:func:`aseqdip.auto.resolve`): the rule, and the method settings auto adds (the ramp);
* the rule checked against the method's declared capabilities (``iterative``, ``stops_itself``,
  ``reads_every_measurement``: :class:`aseqdip.methods.base.DIPMethod`), never its type;
* the noise level the rule needs, computed once (:func:`aseqdip.physics.noise_level.noise_level`), and
  under ``auto`` the fallback to the fixed budget when none can be found;
* the record of what auto chose and why (metrics.json -> ``stopping.auto``).

Errors name the parameters in Python terms (``OutputRule.sigma``); the command line maps them to its flags.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import deepinv as dinv
import torch

from .auto import DEFAULT_STOP, apply_to, resolve
from .engine.stopping import check_window
from .errors import UserInputError
from .outputrule import DEFAULT_PATIENCE, NOISE_SOURCES, OBSERVABLE, STOP_RULES, OutputRule, needs_noise
from .physics.hints import MeasurementHints
from .physics.noise_level import NoiseLevel, noise_level


@dataclass
class Plan:
    """What a run does: ``method`` as it will run, the concrete ``rule``, the ``noise`` level the rule uses
    (None when it uses none), and ``auto``, the record of what ``auto`` chose (None without ``auto``)."""

    method: Any
    rule: OutputRule
    noise: NoiseLevel | None = None
    auto: dict[str, Any] | None = None

    @property
    def plain(self) -> bool:
        """True when the method runs its own budget with nothing watching (``stop="none"``, no EMA, no observer)."""
        return self.rule.stop == "none" and self.rule.ema is None and not self.rule.observe


def make_plan(method: Any, rule: OutputRule | None, physics: Any, y: torch.Tensor,
              hints: MeasurementHints | None = None) -> Plan:
    """The plan of one run (``rule=None``: ``auto``, the default); refuses, in one line, what cannot apply."""
    rule = OutputRule(stop=DEFAULT_STOP) if rule is None else rule
    record = None
    if rule.stop == "auto":
        settings, rule = resolve(method, rule, physics, hints)
        record = {"method": settings}
        method = apply_to(method, settings)
    check(rule, method, physics)
    plan = Plan(method, rule, auto=record)
    if plan.plain or rule.stop == "selfval" or not needs_noise(rule):
        return plan
    try:
        plan.noise = resolve_noise(rule, physics, y, hints)
    except UserInputError as exc:
        if record is None or rule.stop == "none":
            raise
        # auto is the default for any operator, including ones no estimator knows and noise-free data: there
        # it runs the method as published rather than refusing, and says so
        from .messages import warn

        reason = f"no noise level for the auto rule ({exc}); ran the fixed budget instead"
        warn(f"--stop auto: {reason}")
        kept = tuple(name for name in rule.observe if name in ("wmv", "residual"))  # the ones that need no sigma
        plan.rule = dataclasses.replace(rule, stop="none", ema=None, observe=kept)
        record["fallback"] = reason
    return plan


def resolve_noise(rule: OutputRule, physics: Any, y: torch.Tensor,
                  hints: MeasurementHints | None = None) -> NoiseLevel:
    """The noise level the rule uses: ``rule.sigma`` if given, else the model or the estimate (``rule.noise``)."""
    what = f"OutputRule(stop={rule.stop!r})" if rule.stop in ("discrepancy", "sure") else "OutputRule.observe"
    if rule.sigma is not None and not rule.sigma > 0:
        raise UserInputError(f"OutputRule.sigma: the noise level must be positive, got {rule.sigma:g}")
    if rule.sigma is None and rule.noise == "none":
        if rule.stop == "sure" or "sure" in rule.observe:
            raise UserInputError(f"{what}: SURE needs a noise level above 0; OutputRule.noise='none' is for the "
                                 f"discrepancy principle")
        return NoiseLevel(0.0, "none", "the data taken as noise-free (level 0): the discrepancy principle runs to the "
                                       "budget and returns the iterate with the smallest residual")
    if rule.sigma is None and rule.noise == "model":
        level = noise_level(physics, y, prefer="model", hints=hints)
        if level.source not in ("model", "file"):
            raise UserInputError(f"{what} needs the noise level: this measurement has no Gaussian noise of known "
                                 f"sigma > 0; give OutputRule.sigma or use OutputRule.noise='estimate'")
        return level
    try:
        level = noise_level(physics, y, given=rule.sigma, prefer="estimate", hints=hints)
    except ValueError as exc:
        raise UserInputError(f"{what}: {exc}") from None
    scale = float(y.detach().abs().max()) if y.numel() else 0.0
    if not level.sigma > 1e-6 * scale:  # an estimate at round-off level: the data hold no measurable noise
        raise UserInputError(f"{what}: the noise level estimated from the measurement is 0 (noise-free data?); "
                             f"give OutputRule.sigma")
    return level


def check(rule: OutputRule, method: Any, physics: Any) -> None:
    """Refuse, in one line, a rule that cannot apply to this method or operator (asked of the method's
    declared capabilities)."""
    if rule.stop not in STOP_RULES:
        raise UserInputError(f"OutputRule.stop: unknown stopping rule {rule.stop!r}; choose from {', '.join(STOP_RULES)}")
    if rule.stop == "auto":
        raise ValueError("resolve stop='auto' with aseqdip.auto.resolve before checking the rule")
    if rule.noise not in NOISE_SOURCES:
        raise UserInputError(f"OutputRule.noise must be one of {', '.join(NOISE_SOURCES)}, got {rule.noise!r}")
    unknown = [name for name in rule.observe if name not in OBSERVABLE]
    if unknown:
        raise UserInputError(f"OutputRule.observe: cannot observe {', '.join(unknown)}; observable rules: "
                             f"{', '.join(OBSERVABLE)}")
    if rule.stop == "none" and rule.ema is None and not rule.observe:
        return
    what = (f"OutputRule(stop={rule.stop!r})" if rule.stop != "none"
            else ("OutputRule.ema" if rule.ema is not None else "OutputRule.observe"))
    if not getattr(method, "iterative", False):
        raise UserInputError(f"{what} applies to the network methods; {method.name} has no iterations to choose from")
    if getattr(method, "stops_itself", False):
        raise UserInputError(f"{what}: method {method.name} already stops by its own rule; use method dip with a "
                             f"stopping rule or an EMA")
    if rule.ema is not None and not 0.0 <= rule.ema < 1.0:
        raise UserInputError(f"OutputRule.ema must lie in [0, 1), got {rule.ema:g}")
    if rule.every is not None and rule.every < 1:
        raise UserInputError(f"OutputRule.every must be at least 1, got {rule.every}")
    if rule.patience is not None and rule.patience < 1:
        raise UserInputError(f"OutputRule.patience (the stopping patience) must be at least 1 step, got {rule.patience}")
    if rule.stop == "selfval":
        if not 0.0 < rule.holdout <= 0.5:
            raise UserInputError(f"OutputRule.holdout must lie in (0, 0.5], got {rule.holdout:g}")
        if getattr(method, "reads_every_measurement", False):
            raise UserInputError(f"OutputRule(stop='selfval') cannot apply to {method.name}: its loss uses every "
                                 f"entry of y (use stop='sure' or another method)")
    elif rule.stop == "wmv":
        try:
            check_window(rule.window, rule.patience or DEFAULT_PATIENCE["wmv"])
        except ValueError as exc:
            raise UserInputError(f"OutputRule.window: {exc}") from None
    elif rule.stop == "discrepancy" and not rule.tau > 0:
        raise UserInputError(f"OutputRule.tau must be positive, got {rule.tau:g}")
    if (rule.stop == "sure" or "sure" in rule.observe) and not isinstance(physics, dinv.physics.Denoising):
        raise UserInputError(f"OutputRule(stop='sure') is for Gaussian denoising (identity operator); this "
                             f"problem's operator is {type(physics).__name__}")
