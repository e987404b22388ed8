"""What decides a run's returned image: :class:`OutputRule` (CLI ``--stop``, ``--ema``, ``--observe``) and its names.

A leaf module: the rules (:mod:`aseqdip.rules`), what ``auto`` means (:mod:`aseqdip.auto`) and the run plan
(:mod:`aseqdip.plan`) all read it, and it imports none of them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

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
    ``observe`` names rules that watch the run without stopping it (``OBSERVABLE``). ``holdout`` is the fraction
    of measured locations held out by ``selfval``; ``refit``
    reruns the method on all measurements for the budget self-validation found. ``halt=False`` keeps the
    run going after a rule has decided (to compare rules along one run). ``seed`` draws the held-out set
    and SURE's probe. ``confirm`` (discrepancy; None: off) runs that fraction of the steps taken again after the
    level is reached, and takes the data as noise-free if the residual falls below half the level meanwhile
    (:class:`aseqdip.engine.stopping.Discrepancy`).
    """

    stop: str = "none"
    ema: float | None = None
    holdout: float = 0.1
    refit: bool = False
    every: int | None = None
    patience: int | None = None
    window: int = 100
    tau: float = 1.0
    confirm: float | None = None
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
            "discrepancy": {"tau", "sigma", "every", "noise", "confirm"},
            "sure": {"sigma", "alpha", "pairs", "every", "patience", "seed", "noise"},
        }.get(self.stop, set())
        out = {k: v for k, v in asdict(self).items() if k in keep}
        if out.get("confirm", 0) is None:
            del out["confirm"]  # off: the records of runs before the window existed read the same
        out["observe"] = list(self.observe)
        if "every" in out and out["every"] is None:
            out["every"] = DEFAULT_EVERY[self.stop]
        if "patience" in out and out["patience"] is None:
            out["patience"] = DEFAULT_PATIENCE[self.stop]
        return out


def needs_noise(rule: OutputRule) -> bool:
    """True when the rule (or one it observes) compares a residual with the noise level."""
    return rule.stop in ("discrepancy", "sure") or any(name not in ("wmv", "residual") for name in rule.observe)
