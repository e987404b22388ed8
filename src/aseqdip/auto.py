"""The default mode, ``--stop auto``: per method, a stopping rule, a ramp and a ceiling, chosen by measurement.

A DIP-family run first fits the image and then the noise, and the step where it is best depends on
the image, its size, the noise and the task. ``auto`` returns the image a rule chooses without the
ground truth and stops there, with the budget (``--iterations``, default 4000) as a ceiling:

* rule: the discrepancy principle (stop once the residual over the measured entries reaches the noise
  level) with the noise level the user gives (``--sure-sigma``) or, by default, *estimated from the
  measurement* (``physics/noise_level.py``). It never reads the noise level of a simulation: a user
  with real data does not have it. On CT without a photon count no estimate is a noise level (only a
  floor of the sinogram's detail), so the data are taken as noise-free there: the run goes to the budget
  and returns the iterate with the smallest residual (:data:`NOISE_FREE_PHYSICS`).
* ramp (aSeqDIP only, not on CT): Algorithm 1 at 3e-4 for its first 100 steps, then the paper's 1e-4, so
  that the first steps are not spent climbing back to z_0. The fixed point is unchanged. On CT it made
  the runs less stable and did not raise their end point (:data:`NO_RAMP_PHYSICS`).

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

from .rules import OutputRule

DEFAULT_STOP = "auto"  # what a run does when no --stop (no rule) is given


@dataclass(frozen=True)
class AutoChoice:
    """What ``auto`` means for one method: keyword arguments it sets (unless the user set them) and the rule."""

    method: dict[str, Any] = field(default_factory=dict)
    rule: OutputRule = OutputRule(stop="none")


DISCREPANCY = OutputRule(stop="discrepancy", noise="estimate")
# aSeqDIP's ramp: Algorithm 1 at 3e-4 for its first 100 steps, then the paper's 1e-4 (the fixed point is
# unchanged). Chosen on tuning images only (docs/auto.md, benchmarks/results/auto-pilot/): it climbs back
# above z_0 by step 16 (rocket denoising, against 46), 88 (rocket deblurring, against 204), 70 (CT_small,
# 18 views, against 252) and 98 (MR_small, 4x, against 235; 25.23 dB at step 1000 against 24.48), and raised the oracle peak on rocket denoising (30.58 dB against 30.37) and
# deblurring (29.13 against 28.08); on CT_small it led until step 500 but was 30.03 dB at step 1000 against 30.32.
# A rate of 1e-3 climbed sooner but lowered the peak by 0.5-4.7 dB on every task.
ASEQDIP_RAMP: dict[str, float] = {"ramp": 100}  # at 3 x lr (ASeqDIP's default ramp rate): 3e-4 for the paper's lr

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
# * not for a warm slice of `aseqdip volume` (hint WARM_SLICE): it starts from its neighbour's fitted network,
#   next to its answer, and there the discrepancy principle on the MAD level stopped slices at 544-904 of
#   2000 steps, +1.55 dB over cold slices at 0.36 of their steps (tuning pseudo-volume of CT_small, 18
#   views, benchmarks/results/volume-warm/tuning-ct-small-pseudo.md), while a warm slice with no rule to
#   stop it and a fixed budget's fifth of the steps lost 0.34 dB to cold.
NOISE_FREE_PHYSICS: tuple[str, ...] = ("Tomography",)
# acquisition settings (the task's noise hint) that make the noise level known on those operators
NOISE_SETTINGS: tuple[str, ...] = ("photons", "noise_sigma")
WARM_SLICE = "warm_slice"  # the noise hint's mark of a slice that aseqdip volume warm-starts from its neighbour

CHOICES: dict[str, AutoChoice] = {
    "aseqdip": AutoChoice(method=ASEQDIP_RAMP, rule=DISCREPANCY),
    "dip": AutoChoice(rule=DISCREPANCY),
    "tvdip": AutoChoice(rule=DISCREPANCY),
    "sgld": AutoChoice(rule=DISCREPANCY),
    "selfguided": AutoChoice(rule=DISCREPANCY),
    "refguided": AutoChoice(rule=DISCREPANCY),
}
# esdip stops by its own rule, rethinking trains on SURE, cs and fbp have no iterations to choose from:
# for them auto is the method as published.
AS_PUBLISHED = AutoChoice()


def choice_for(method_name: str) -> AutoChoice:
    """The ``auto`` choice of a method (the method as published when no rule applies to it)."""
    return CHOICES.get(method_name, AS_PUBLISHED)


def method_settings(method_name: str, physics: Any = None, task: str | None = None) -> dict[str, Any]:
    """The method keyword arguments auto sets for ``method_name`` on this operator (or ``task``, by name).

    The ramp is dropped on the operators of :data:`NO_RAMP_PHYSICS` (the ``ct`` task's).
    """
    settings = dict(choice_for(method_name).method)
    on_ct = task == "ct" if task is not None else _one_of(physics, NO_RAMP_PHYSICS)
    if on_ct:
        settings.pop("ramp", None)
    return settings


def _one_of(physics: Any, names: tuple[str, ...]) -> bool:
    """True when ``physics`` is (a subclass of) one of the deepinv classes ``names``."""
    return any(cls.__name__ in names for cls in type(physics).__mro__)


def noise_source(physics: Any, hint: dict[str, Any] | None = None) -> str:
    """Where auto's discrepancy principle takes its noise level from on ``physics``: ``"estimate"``, or
    ``"none"`` (noise-free, level 0) on :data:`NOISE_FREE_PHYSICS` when ``hint`` holds none of
    :data:`NOISE_SETTINGS` and does not mark a warm slice (:data:`WARM_SLICE`)."""
    hint = hint or {}
    if (_one_of(physics, NOISE_FREE_PHYSICS) and not hint.get(WARM_SLICE)
            and not any(hint.get(name) for name in NOISE_SETTINGS)):
        return "none"
    return "estimate"


def resolve(method_name: str, rule: OutputRule, physics: Any = None,
            hint: dict[str, Any] | None = None) -> tuple[dict[str, Any], OutputRule]:
    """(method keyword arguments, concrete rule) for a rule that may say ``stop="auto"``, on ``physics``.

    The user's own rule settings (``sigma``, ``tau``, ``ema``, ``observe``, ``every``) carry over onto the
    auto rule; a concrete ``stop`` is returned unchanged with no method settings. ``hint`` holds the task's
    acquisition settings (:func:`noise_source`).
    """
    if rule.stop != "auto":
        return {}, rule
    chosen = choice_for(method_name)
    carried = {name: getattr(rule, name) for name in ("sigma", "tau", "ema", "observe", "every", "halt", "seed")}
    if chosen.rule.stop == "none" and rule.ema is None:
        carried.pop("ema")
    concrete = dataclasses.replace(chosen.rule, **carried)
    if concrete.sigma is not None:
        concrete = dataclasses.replace(concrete, noise="estimate")  # a given sigma wins over both sources
    elif concrete.stop == "discrepancy":
        concrete = dataclasses.replace(concrete, noise=noise_source(physics, hint))
    return method_settings(method_name, physics), concrete


def apply_to(method: Any, settings: dict[str, Any]) -> Any:
    """A copy of ``method`` with auto's settings where the method still has its published default (0 steps).

    A method with ``schedule_fixed`` set keeps its warm-up and ramp as they are, even at 0 steps: ``aseqdip
    volume``'s warm slices start from a fitted network, so they go without the ramp unless asked for it.
    """
    if not settings:
        return method
    if getattr(method, "schedule_fixed", False) or any(getattr(method, name, 0) for name in ("ramp", "warmup")):
        return method  # the user (or the caller) chose the ramp and warm-up: keep them
    out = copy.copy(method)
    for name, value in settings.items():
        setattr(out, name, value)
    return out
