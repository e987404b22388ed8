"""Stopping rules: callbacks that end a run early and say which iterate to return.

A stopping rule watches the method's estimate after every step (it never sees the ground truth),
sets ``state.stop`` when it decides, and offers its chosen iterate through :meth:`Callback.selection`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from .callbacks import Callback, Series
from .state import LoopState


def _on(t: torch.Tensor | None, device: torch.device) -> torch.Tensor | None:
    """``t`` on ``device`` (checkpointed tensors come back on the CPU)."""
    return t if t is None or t.device == device else t.to(device)


class MinimumRule(Callback):
    """Base of the rules that return the iterate where a score (a risk estimate) was lowest.

    Every ``every`` steps (and at the last step) :meth:`score` rates the watched estimate; the rule keeps
    the iterate with the lowest score. When ``patience`` steps pass without a new minimum it stops the
    run (``halt=True``) or, with ``halt=False``, only freezes its choice and lets the run go on (to
    compare several rules along one run). ``label`` names the rule in ``Reconstruction.rule``.
    """

    name = "minimum"

    def __init__(self, estimate: Callable[[LoopState], torch.Tensor], every: int = 1, patience: int = 500,
                 halt: bool = True, label: str | None = None) -> None:
        if every < 1:
            raise ValueError(f"the check interval must be at least 1 step, got {every}")
        if patience < 1:
            raise ValueError(f"patience must be at least 1 step, got {patience}")
        self.estimate = estimate
        self.every = every
        self.patience = patience
        self.halt = halt
        self.label = label or self.name
        self.reset()

    def reset(self) -> None:
        self.best_score = float("inf")
        self.best_iteration: int | None = None
        self.stopped_at: int | None = None
        self._best_image: torch.Tensor | None = None
        self.curve = Series(self.name)

    def on_start(self, state: LoopState) -> None:
        if state.iteration == 0:  # a fresh run (a resumed one arrives with its state restored)
            self.reset()

    def score(self, state: LoopState, x: torch.Tensor) -> torch.Tensor | None:
        """The risk estimate of ``x`` (lower is better; None: nothing to rate yet); subclasses define it."""
        raise NotImplementedError

    def due(self, state: LoopState) -> bool:
        return state.iteration % self.every == 0 or state.iteration == state.iterations

    def on_step(self, state: LoopState) -> None:
        if self.stopped_at is not None or not self.due(state):
            return
        x = self.estimate(state).detach()
        self._best_image = _on(self._best_image, x.device)
        scored = self.score(state, x)
        if scored is None:  # nothing to rate yet (ES-WMV's window still filling)
            return
        value = float(scored)
        self.curve.add(state.iteration, value)
        if value < self.best_score:
            self.best_score, self.best_iteration = value, state.iteration
            self._best_image = x.clone()
        elif state.iteration - self.best_iteration >= self.patience:
            self.stopped_at = state.iteration
            if self.halt:
                state.stop = True
                state.stop_reason = self.stop_reason()

    def stop_reason(self) -> str:
        return f"{self.label}: no new minimum for {self.patience} steps; minimum at iteration {self.best_iteration}"

    def selection(self) -> tuple[torch.Tensor, int, str] | None:
        if self._best_image is None:
            return None
        return self._best_image, int(self.best_iteration), self.label

    def history(self) -> dict[str, list[float]]:
        return self.curve.history()

    def state_dict(self) -> dict:
        return {"best_score": self.best_score, "best_iteration": self.best_iteration, "stopped_at": self.stopped_at,
                "best_image": None if self._best_image is None else self._best_image.cpu(), **self.curve.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.best_score, self.best_iteration = float(state["best_score"]), state["best_iteration"]
        self.stopped_at, self._best_image = state["stopped_at"], state["best_image"]
        self.curve.load_state_dict(state)


def check_window(window: int, patience: int) -> None:
    """ES-WMV's settings, checked in one place (the rule, ES-DIP and the run's plan ask this)."""
    if window < 2:
        raise ValueError(f"the variance window must hold at least 2 iterates, got {window}")
    if patience < 1:
        raise ValueError(f"patience must be at least 1, got {patience}")


class WindowedMovingVariance(MinimumRule):
    """ES-WMV early stopping (Wang, Li, Zhuang, Chen, Liang, Sun, "Early Stopping for Deep Image Prior", TMLR 2023).

    After each step the last ``window`` estimates x_{t-W+1..t} give the windowed moving variance

        VAR_t = 1/W * sum_w  mean((x_{t-w} - xbar_t)^2),     xbar_t = 1/W * sum_w x_{t-w}

    (``mean`` over pixels, as the authors' code). It is a :class:`MinimumRule` on VAR_t, checked every
    step once the window has filled: the iterate where VAR_t was lowest is kept, and when ``patience``
    steps pass without a new minimum the run stops and that iterate is returned. Defaults W = 100,
    P = 1000 are the authors' (sun-umn/Early_Stopping_for_DIP, ES_WMV.ipynb: ``buffer_size = 100``,
    ``patience = 1000``).

    ``estimate`` maps the loop state to the image being watched (a method's :meth:`estimate`). The
    window is a ring buffer on the estimate's device, so a step costs O(W * pixels) and no copies to
    the host beyond one scalar comparison.
    """

    name = "wmv"

    def __init__(self, estimate: Callable[[LoopState], torch.Tensor], window: int = 100, patience: int = 1000,
                 halt: bool = True) -> None:
        check_window(window, patience)
        self.window = window
        super().__init__(estimate, every=1, patience=patience, halt=halt, label="es-wmv")

    def reset(self) -> None:
        super().reset()
        self._buffer: torch.Tensor | None = None
        self._filled = 0

    def stop_reason(self) -> str:
        return (f"ES-WMV: no new variance minimum for {self.patience} steps (window {self.window}); "
                f"minimum at iteration {self.best_iteration}")

    def state_dict(self) -> dict:
        buffer = None if self._buffer is None else self._buffer.cpu()
        return {**super().state_dict(), "buffer": buffer, "filled": self._filled}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self._buffer, self._filled = state["buffer"], int(state["filled"])

    def variance(self) -> torch.Tensor:
        """VAR_t of the full window (call only once ``window`` iterates are in)."""
        buf = self._buffer
        return (buf - buf.mean(dim=0, keepdim=True)).abs().square().mean()

    def score(self, state: LoopState, x: torch.Tensor) -> torch.Tensor | None:
        """VAR_t after adding ``x`` to the window; None until the window has filled."""
        flat = torch.view_as_real(x).reshape(-1) if torch.is_complex(x) else x.reshape(-1)
        if self._buffer is None:
            self._buffer = torch.empty((self.window, flat.numel()), dtype=torch.float32, device=flat.device)
        self._buffer = _on(self._buffer, flat.device)  # restored from a checkpoint on the CPU
        self._buffer[self._filled % self.window] = flat
        self._filled += 1
        return self.variance() if self._filled >= self.window else None


def mean_residual(physics: Any, y: torch.Tensor, x: torch.Tensor, measured: torch.Tensor | None) -> torch.Tensor:
    """sum over measured entries of |A x - y|^2 / #measured (data units; all entries when ``measured`` is None).

    The discrepancy principle compares it with sigma^2; recorded along a whole run (``--observe residual``,
    a :class:`~aseqdip.engine.callbacks.TrackMetric` of it) it lets a study evaluate that rule afterwards
    for any noise level and tau.
    """
    diff = physics.A(x) - y
    sq = diff.real.square() + diff.imag.square() if torch.is_complex(diff) else diff.square()
    if measured is None:
        return sq.mean()
    mask = measured.to(sq.device)
    return (sq * mask).sum() / mask.expand_as(sq).sum().clamp_min(1)


NOISE_FREE = "noise-free"  # in the label of an iterate the confirmation window chose on noise-free data
NEAREST = "smallest residual"  # in the label of an iterate chosen because the residual never reached the level


class Discrepancy(Callback):
    """Morozov's discrepancy principle: stop once the fit reaches the noise level.

    Every ``every`` steps the per-entry residual r_t = sum_measured |A x_t - y|^2 / #measured is compared
    with ``tau * sigma^2`` (``sigma`` the noise std per measured entry, data units). The rule arms once
    r_t has been above that level (aSeqDIP starts from z_0 = y, whose residual is 0) and stops at the first
    check where r_t falls to or below it, returning that iterate. ``measured`` marks the entries that were
    measured (an inpainting mask, sampled k-space), so unmeasured zeros do not dilute the mean.

    If the residual never gets down to the level (noise-free data, a noise level estimated too low), the
    rule returns the iterate that came nearest to it, the one with the smallest residual since it armed,
    labelled ``"<label>, smallest residual"``, rather than the last one. The two are the same while the fit
    keeps improving; they differ when a run turns unstable late (aSeqDIP on noise-free CT: loss up 300-fold
    after step 2974, the last iterate 16 dB below the best). It costs one image copy per new minimum.

    ``sigma = 0`` says the data are noise-free: the level is 0, which no residual reaches, so the rule runs
    to the budget and returns the iterate with the smallest residual (its curve then holds the residual
    itself, in data units, instead of the ratio to sigma^2).

    ``confirm`` (a fraction; None or 0: off) checks that the level was a noise level before stopping. Where the
    residual first reaches it, that iterate is kept and the run goes on for ``confirm`` times the steps taken
    so far. Real noise is fitted slowly (DIP's premise), so the residual stays near sigma^2 and the kept
    iterate is returned at the window's end. If instead the residual falls below ``confirm_level`` times the
    level inside the window, what was estimated was the data's own detail, not noise (noise-free simulated
    k-space: the corner estimate, 0.0013-0.0041, is the image's high frequencies), and the rule goes on as
    at ``sigma = 0``: to the budget, returning the iterate with the smallest residual.
    """

    name = "discrepancy"

    def __init__(self, estimate: Callable[[LoopState], torch.Tensor], sigma: float, tau: float = 1.0,
                 measured: torch.Tensor | None = None, every: int = 1, halt: bool = True,
                 label: str | None = None, confirm: float | None = None, confirm_level: float = 0.5) -> None:
        if not sigma >= 0:
            raise ValueError(f"the discrepancy principle needs a noise level sigma >= 0, got {sigma}")
        if not tau > 0:
            raise ValueError(f"tau must be positive, got {tau}")
        if every < 1:
            raise ValueError(f"the check interval must be at least 1 step, got {every}")
        if confirm is not None and not confirm >= 0:
            raise ValueError(f"the confirmation window must be a fraction >= 0 of the steps (0: off), got {confirm}")
        if not 0 < confirm_level < 1:
            raise ValueError(f"the confirmation level must lie strictly between 0 and 1, got {confirm_level}")
        self.confirm, self.confirm_level = (confirm or None), float(confirm_level)  # 0 is off, as None
        self.estimate = estimate
        self.sigma = float(sigma)
        self.tau = float(tau)
        self.measured = measured
        self.every = every
        self.halt = halt
        self.label = label or self.name
        self.reset()

    def reset(self) -> None:
        self.armed = False
        self.stopped_at: int | None = None
        self._image: torch.Tensor | None = None
        self.nearest_ratio = float("inf")  # the smallest residual / sigma^2 since the rule armed
        self.nearest_iteration: int | None = None
        self._nearest: torch.Tensor | None = None
        self.level = self.tau if self.sigma > 0 else 0.0  # what ``ratio`` is compared with (residual itself at sigma 0)
        self.candidate_at: int | None = None  # with ``confirm``: where the level was reached, awaiting confirmation
        self._candidate: torch.Tensor | None = None
        self.noise_free_at: int | None = None  # with ``confirm``: where the level turned out not to be noise
        self.curve = Series(self.name)

    def on_start(self, state: LoopState) -> None:
        if state.iteration == 0:
            self.reset()

    def residual(self, state: LoopState, x: torch.Tensor) -> torch.Tensor:
        """Mean squared residual over the measured entries (data units)."""
        return mean_residual(state.physics, state.y, x, self.measured)

    def on_step(self, state: LoopState) -> None:
        if self.stopped_at is not None or (state.iteration % self.every and state.iteration != state.iterations):
            return
        with torch.no_grad():
            x = self.estimate(state).detach()
            self._image = _on(self._image, x.device)
            residual = float(self.residual(state, x))
            ratio = residual / self.sigma**2 if self.sigma > 0 else residual
        self.curve.add(state.iteration, ratio)
        if self.candidate_at is not None:
            self._confirm(state, x, ratio)
        elif ratio > self.level:
            self.armed = True
            if ratio < self.nearest_ratio:
                self.nearest_ratio, self.nearest_iteration, self._nearest = ratio, state.iteration, x.clone()
        elif self.armed and self.confirm is None:
            self._stop(state, state.iteration, x.clone(), f"residual {ratio:.3f} sigma^2 <= tau {self.tau:g} sigma^2 "
                                                          f"at iteration {state.iteration}")
        elif self.armed:
            self._confirm(state, x, ratio)

    def _stop(self, state: LoopState, iteration: int, image: torch.Tensor, why: str) -> None:
        self.stopped_at, self._image = iteration, image
        if self.halt:
            state.stop = True
            state.stop_reason = f"{self.label}: {why}"

    def _confirm(self, state: LoopState, x: torch.Tensor, ratio: float) -> None:
        """Inside the confirmation window: keep the first iterate at the level; stop with it at the window's end,
        or take the data as noise-free if the residual falls well below the level first."""
        if self.candidate_at is None:
            self.candidate_at, self._candidate = state.iteration, x.clone()
        if ratio <= self.confirm_level * self.tau:
            self.noise_free_at, self.level = state.iteration, 0.0  # from here on as at sigma = 0
            self.candidate_at, self._candidate = None, None
            self.nearest_ratio, self.nearest_iteration, self._nearest = ratio, state.iteration, x.clone()
        elif state.iteration >= self.candidate_at * (1 + self.confirm):
            self._stop(state, self.candidate_at, self._candidate,
                       f"residual <= tau {self.tau:g} sigma^2 at iteration {self.candidate_at} and still above "
                       f"{self.confirm_level:g} tau sigma^2 at iteration {state.iteration} (a noise level)")

    def on_end(self, state: LoopState) -> None:
        """Say why a run the rule never armed in went to its end: its estimate fitted the data below the noise
        level from the first check on (a start that copies y, such as a prior that became an identity, or a
        noise level estimated too high), so nothing told a fit from an over-fit."""
        if self.candidate_at is not None and self.halt and not getattr(state, "stop_reason", ""):
            # the budget ended inside the window: selection() returns the kept iterate
            state.stop_reason = (f"{self.label}: residual <= tau {self.tau:g} sigma^2 at iteration "
                                 f"{self.candidate_at}; the budget ended inside the confirmation window")
        if self.noise_free_at is not None and self.halt and not getattr(state, "stop_reason", ""):
            state.stop_reason = (f"{self.label}: the residual fell to {self.confirm_level:g} tau sigma^2 at iteration "
                                 f"{self.noise_free_at}, within the confirmation window: the estimated level is the "
                                 f"data's detail, not noise, so the run went to its budget and returns the iterate "
                                 f"with the smallest residual")
        if self.halt and not self.armed and len(self.curve) and not getattr(state, "stop_reason", ""):
            state.stop_reason = (f"{self.label}: the residual was at or below tau sigma^2 from the first check on, "
                                 f"so the rule never armed; the run's last iterate is returned (is the start a copy "
                                 f"of the data, or the noise level too high?)")

    def selection(self) -> tuple[torch.Tensor, int, str] | None:
        """The iterate where the residual reached the noise level, else the nearest one (None before arming)."""
        if self._image is not None:
            return self._image, int(self.stopped_at), self.label
        if self._candidate is not None:  # the budget ended inside the confirmation window (the loop asks before on_end)
            return self._candidate, int(self.candidate_at), self.label
        if self._nearest is not None:
            noise_free = f", {NOISE_FREE}" if self.noise_free_at is not None else ""
            return self._nearest, int(self.nearest_iteration), f"{self.label}{noise_free}, {NEAREST}"
        return None

    def history(self) -> dict[str, list[float]]:
        return self.curve.history()

    def state_dict(self) -> dict:
        return {"armed": self.armed, "stopped_at": self.stopped_at,
                "image": None if self._image is None else self._image.cpu(),
                "nearest_ratio": self.nearest_ratio, "nearest_iteration": self.nearest_iteration,
                "nearest": None if self._nearest is None else self._nearest.cpu(), "level": self.level,
                "candidate_at": self.candidate_at, "noise_free_at": self.noise_free_at,
                "candidate": None if self._candidate is None else self._candidate.cpu(), **self.curve.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.armed, self.stopped_at, self._image = bool(state["armed"]), state["stopped_at"], state["image"]
        # checkpoints written before the nearest iterate was kept have none: it is found again from here on
        self.nearest_ratio = float(state.get("nearest_ratio", float("inf")))
        self.nearest_iteration, self._nearest = state.get("nearest_iteration"), state.get("nearest")
        self.level = float(state.get("level", self.level))
        self.candidate_at, self._candidate = state.get("candidate_at"), state.get("candidate")
        self.noise_free_at = state.get("noise_free_at")
        self.curve.load_state_dict(state)


class ExponentialAverage(Callback):
    """An exponential moving average of the estimates, xbar_t = d xbar_{t-1} + (1 - d) x_t, as an output rule.

    Alone it returns the average at the end of the run; placed *before* a stopping rule in the callback
    list, with the rule watching :meth:`current`, the rule watches (and returns) the average instead of
    the raw iterates. The average starts at the first estimate (no zero-initialisation bias).
    """

    name = "ema"

    def __init__(self, estimate: Callable[[LoopState], torch.Tensor], decay: float = 0.99) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"the EMA decay must lie in [0, 1), got {decay}")
        self.estimate = estimate
        self.decay = decay
        self.label = f"ema({decay:g})"
        self.reset()

    def reset(self) -> None:
        self._average: torch.Tensor | None = None
        self._iteration = 0

    def on_start(self, state: LoopState) -> None:
        if state.iteration == 0:
            self.reset()

    def on_step(self, state: LoopState) -> None:
        x = self.estimate(state).detach()
        if self._average is None:
            self._average = x.clone()
        else:
            self._average = _on(self._average, x.device)
            self._average.mul_(self.decay).add_(x, alpha=1.0 - self.decay)
        self._iteration = state.iteration

    def current(self, state: LoopState) -> torch.Tensor:
        """The average so far (an ``estimate`` callable for the rules that watch it)."""
        return self.estimate(state) if self._average is None else self._average

    def selection(self) -> tuple[torch.Tensor, int, str] | None:
        if self._average is None:
            return None
        return self._average.clone(), self._iteration, self.label

    def state_dict(self) -> dict:
        return {"average": None if self._average is None else self._average.cpu(), "iteration": self._iteration}

    def load_state_dict(self, state: dict) -> None:
        self._average, self._iteration = state["average"], int(state["iteration"])
