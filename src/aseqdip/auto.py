"""The default mode, ``--stop auto``: per method, a stopping rule, a ramp and a ceiling, chosen by measurement.

A DIP-family run first fits the image and then the noise, and the step where it is best depends on
the image, its size, the noise and the task. ``auto`` returns the image a rule chooses without the
ground truth and stops there, with the budget (``--iterations``, default 4000) as a ceiling:

* rule: the discrepancy principle (stop once the residual over the measured entries reaches the noise
  level) with the noise level the user gives (``--sure-sigma``) or, by default, *estimated from the
  measurement* (``physics/noise_level.py``). It never reads the noise level of a simulation: a user
  with real data does not have it. On CT without a photon count no estimate is a noise level (only a
  floor of the sinogram's detail), so the data are taken as noise-free there: the run goes to the budget
  and returns the iterate with the smallest residual (:data:`NOISE_FREE_PHYSICS`). With a data-consistent
  input the level is confirmed before the rule stops (:data:`CONFIRM_WITH_DC_INPUT`).
* method settings (``auto_settings`` of the method's class; aSeqDIP's ramp, not on CT): Algorithm 1 at
  3e-4 for its first 100 steps, then the paper's 1e-4, so that the first steps are not spent climbing back
  to z_0. The fixed point is unchanged. On CT it made the runs less stable and did not raise their end
  point (:data:`NO_RAMP_PHYSICS`).

What auto means for a method is read from the method's class (``auto_stop``, ``auto_settings``), so a new
method needs no entry here.

``auto`` is the default of ``aseqdip run``, ``reconstruct``, ``batch``, :func:`aseqdip.rules.reconstruct`
and of calling a method as a deepinv model, ``x = model(y, physics)``; ``--stop none``
(``OutputRule(stop="none")``, or ``model.reconstruct(y, physics)``) runs the paper's fixed budget exactly.
Where no noise level can be found (an operator no estimator knows, noise-free data) auto runs the fixed
budget and says so. The figures behind these choices, and what each rule and ramp achieved, are in
docs/auto.md; the study that checks them on every task is ``benchmarks/auto_study.py``.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .outputrule import OutputRule
from .physics.hints import MeasurementHints

DEFAULT_STOP = "auto"  # what a run does when no --stop (no rule) is given


@dataclass(frozen=True)
class AutoChoice:
    """What ``auto`` means for one method: keyword arguments it sets (unless the user set them) and the rule."""

    method: dict[str, Any] = field(default_factory=dict)
    rule: OutputRule = OutputRule(stop="none")


DISCREPANCY = OutputRule(stop="discrepancy", noise="estimate")
# Operators on which auto leaves aSeqDIP's ramp off (deepinv class names; the ct task's operator is
# deepinv's Tomography). Measured on tuning slices only, 64 px, 18 views, 4000 steps, sum-form lambda
# (docs/auto.md, "The ramp on CT"): on CT_small the ramp ended 0.21 dB higher (34.07 against 33.86 dB) but
# fell to 26.34 dB at step 3000 on the way, against a steady 33.12 without; on eCT_Supplemental it was
# behind at every step (27.75 against 28.21 dB at 4000) and first beat FBP at step 940 against 580. On the
# study's 693_UNCR (a report image, not tuned on) the ramped run collapsed after step 2974.
NO_RAMP_PHYSICS: tuple[str, ...] = ("Tomography",)

# Operators on which auto takes the data as noise-free (the discrepancy principle at level 0: the iterate with
# the smallest residual over the budget) unless the noise level or what sets it is known: the user's
# --sure-sigma, the CT task's photon count (then the post-log Poisson model), a raw file's own noise scan.
# Measured on tuning slices only:
# * the only estimate left, the MAD of the sinogram's second difference, is a floor of the sinogram's own
#   detail, not a noise level: 0.041-0.099 on noise-free sinograms of CT_small, eCT_Supplemental and
#   Shepp-Logan at 64 and 128 px, the size of what 1e6 photons draw (0.011-0.073) and on two of the three
#   at 64 px of what 1e5 draw (benchmarks/results/noise-estimators/ct-sinogram.md);
# * aSeqDIP, 64 px, 4000 steps, noise-free, seed 0 (docs/auto.md, "CT without a photon count"): the
#   discrepancy principle on that floor stopped at steps 1560-3918 and returned 1.63, 0.54, 2.13 and 0.02 dB
#   below the run's oracle best (CT_small and eCT_Supplemental at 18 and 30 views); the smallest residual
#   returned 0.00, 0.00, 0.01 and 0.02 dB below it, and 4.9 dB above the last iterate where a late spike
#   hit the run (CT_small, 30 views).
# * not for a warm slice of `aseqdip volume` (``MeasurementHints.warm_slice``): it starts from its neighbour's fitted network,
#   next to its answer, and there the discrepancy principle on the MAD level stopped slices at 544-904 of
#   2000 steps, +1.55 dB over cold slices at 0.36 of their steps (tuning pseudo-volume of CT_small, 18
#   views, benchmarks/results/volume-warm/tuning-ct-small-pseudo.md), while a warm slice with no rule to
#   stop it and a fixed budget's fifth of the steps lost 0.34 dB to cold.
NOISE_FREE_PHYSICS: tuple[str, ...] = ("Tomography",)

# With a data-consistent input update (aSeqDIP's ``dc_update``, the authors' MRI recipe) auto's discrepancy
# principle confirms its level (:class:`aseqdip.engine.stopping.Discrepancy`, ``confirm``): after the residual
# reaches it, as many steps again; if the residual falls below half the level meanwhile, the estimate was the
# image's detail, not noise, and the run goes to the budget. Measured on the recipe study's MRI slices, 4x, 64 px
# (docs/fidelity.md, "MRI: the authors' recipe at its own budget"; benchmarks/confirm_window.py for why only
# there): on noise-free k-space the level (a corner estimate of
# 0.0013-0.0041, the image's own high frequencies) is reached at about 150-200 steps while the returned image
# climbs to the budget (MR2_UNCR: 25.18 dB at the level, 29.56 at 6000 steps; its residual 0.46 sigma^2 at 1.5 times
# the steps); with k-space noise (sigma 5) the residual stays at 0.85-1.0 sigma^2 for thousands of steps and
# the image falls from its best near the level (MR2_UNCR: 22.98 dB at step 128, 15.8 at 2300).
CONFIRM_WITH_DC_INPUT = 1.0



def choice_for(method: Any) -> AutoChoice:
    """The ``auto`` choice of a method (class or instance), read from its class attributes.

    ``auto_stop`` names the rule (``"discrepancy"`` for the DIP family; ``"none"``, the method as published,
    for esdip, which stops by its own rule, rethinking, which trains on SURE, and cs and fbp, which have no
    iterations to choose from); ``auto_settings`` are the keyword arguments auto sets (aSeqDIP's ramp).
    """
    rule = DISCREPANCY if getattr(method, "auto_stop", "none") == "discrepancy" else OutputRule(stop="none")
    return AutoChoice(method=dict(getattr(method, "auto_settings", {})), rule=rule)


def method_settings(method: Any, physics: Any = None) -> dict[str, Any]:
    """The method keyword arguments auto sets for ``method`` on this operator.

    The ramp is dropped on the operators of :data:`NO_RAMP_PHYSICS` (the ``ct`` task's).
    """
    settings = choice_for(method).method
    if _one_of(physics, NO_RAMP_PHYSICS):
        settings.pop("ramp", None)
    return settings


def _one_of(physics: Any, names: tuple[str, ...]) -> bool:
    """True when ``physics`` is (a subclass of) one of the deepinv classes ``names``."""
    return any(cls.__name__ in names for cls in type(physics).__mro__)


def noise_source(physics: Any, hints: MeasurementHints | None = None) -> str:
    """Where auto's discrepancy principle takes its noise level from on ``physics``: ``"estimate"``, or
    ``"none"`` (noise-free, level 0) on :data:`NOISE_FREE_PHYSICS` when the acquisition does not fix the
    noise level (``hints.noise_known``) and the slice is not a warm one (``hints.warm_slice``)."""
    hints = hints or MeasurementHints()
    if _one_of(physics, NOISE_FREE_PHYSICS) and not hints.warm_slice and not hints.noise_known:
        return "none"
    return "estimate"


def resolve(method: Any, rule: OutputRule, physics: Any = None,
            hints: MeasurementHints | None = None) -> tuple[dict[str, Any], OutputRule]:
    """(method keyword arguments, concrete rule) for a rule that may say ``stop="auto"``, on ``physics``.

    The user's own rule settings (``sigma``, ``tau``, ``ema``, ``observe``, ``every``) carry over onto the
    auto rule; a concrete ``stop`` is returned unchanged with no method settings. A warm slice of ``aseqdip
    volume`` (``hints.warm_slice``) gets no method settings: it starts from a fitted network, so no ramp; nor
    does a run started from the user's fitted network or prior (``hints.fitted_start``, ``--init``), for the
    reason measured on warm slices (at 3 x lr a fitted network fits the noise in a few steps; aseqdip.volume's
    defaults), to be measured again for priors (issue 34's study).
    """
    if rule.stop != "auto":
        return {}, rule
    chosen = choice_for(method)
    carried = {name: getattr(rule, name) for name in ("sigma", "tau", "confirm", "ema", "observe", "every", "halt",
                                                      "seed")}
    if carried["confirm"] is None and getattr(method, "dc_update", False):
        carried["confirm"] = CONFIRM_WITH_DC_INPUT
    if chosen.rule.stop == "none" and rule.ema is None:
        carried.pop("ema")
    concrete = dataclasses.replace(chosen.rule, **carried)
    if concrete.sigma is not None:
        concrete = dataclasses.replace(concrete, noise="estimate")  # a given sigma wins over both sources
    elif concrete.stop == "discrepancy":
        concrete = dataclasses.replace(concrete, noise=noise_source(physics, hints))
    warm = hints is not None and (hints.warm_slice or hints.fitted_start)
    return ({} if warm else method_settings(method, physics)), concrete


def apply_to(method: Any, settings: dict[str, Any]) -> Any:
    """A copy of ``method`` with auto's settings where the method still has its published default (0 steps):
    a ramp or warm-up the user (or a recipe) chose is kept."""
    if not settings or any(getattr(method, name, 0) for name in ("ramp", "warmup")):
        return method
    out = copy.copy(method)
    for name, value in settings.items():
        setattr(out, name, value)
    return out
