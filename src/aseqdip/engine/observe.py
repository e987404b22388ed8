"""Rules as observers: a stopping rule watches a run without stopping it, and records what it would have done.

One run to the ceiling then tells, for every observed rule, the step where it would have stopped (the
steps it would have cost), the iterate it would have returned and, given a ground truth, that iterate's
PSNR, beside the oracle curve of the same run. This is what makes a study of the rules affordable: a rule
that stops the run and the same rule observing it see the same iterates up to the stop (same seed), so
they choose the same step (tests/test_observe.py checks it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from .callbacks import Callback
from .state import LoopState


class Observer(Callback):
    """Runs ``rule`` on every step but keeps the run going; :meth:`record` says what the rule decided.

    When the rule sets ``state.stop`` the observer takes the stop back, notes the step, and stops feeding
    the rule (a rule that trains twin networks, as SURE does, then costs nothing more). It never offers
    an image to return: the run's own rule decides that.
    """

    def __init__(self, label: str, rule: Callback) -> None:
        self.label = label
        self.name = f"observed-{label}"  # the checkpoint's key for this callback
        self.rule = rule
        self.stopped_at: int | None = None
        self.reason = ""

    def on_start(self, state: LoopState) -> None:
        if state.iteration == 0:
            self.stopped_at, self.reason = None, ""
        self.rule.on_start(state)

    def on_step(self, state: LoopState) -> None:
        if self.stopped_at is not None:
            return
        stop, reason = state.stop, state.stop_reason
        state.stop = False  # the rule decides as if it ran alone, even when the run's own rule stops it now
        self.rule.on_step(state)
        if state.stop:
            self.stopped_at, self.reason = state.iteration, state.stop_reason
        state.stop, state.stop_reason = stop, reason

    def on_end(self, state: LoopState) -> None:
        self.rule.on_end(state)

    def choice(self) -> tuple[torch.Tensor, int, str] | None:
        """The (image, iteration, label) the rule would have returned, or None if it chose nothing."""
        return self.rule.selection()

    def record(self, ran: int, metric: Callable[[torch.Tensor], dict[str, float]] | None = None) -> dict[str, Any]:
        """What the rule decided: iteration returned, steps it would have run, and the image's metrics."""
        chosen = self.choice()
        steps = self.stopped_at if self.stopped_at is not None else ran
        out: dict[str, Any] = {"stopped": self.stopped_at is not None, "steps": steps, "stop_reason": self.reason}
        if chosen is None:
            out.update(iteration_returned=None, note="the rule chose no iterate: the method's output would be returned")
            return out
        image, iteration, label = chosen
        out.update(iteration_returned=int(iteration), rule=label)
        if metric is not None and bool(torch.isfinite(image).all()):
            out.update(metric(image.detach()))
        return out

    def history(self) -> dict[str, list[float]]:
        return {f"observed_{self.label}_{key}": value for key, value in self.rule.history().items()}

    def state_dict(self) -> dict:
        return {"rule": self.rule.state_dict(), "stopped_at": self.stopped_at, "reason": self.reason}

    def load_state_dict(self, state: dict) -> None:
        self.rule.load_state_dict(state["rule"])
        self.stopped_at, self.reason = state["stopped_at"], state["reason"]


class Chain(Callback):
    """Several callbacks as one, in order (an EMA and the rule that watches it, observed together)."""

    def __init__(self, *parts: Callback) -> None:
        self.parts = parts

    def on_start(self, state: LoopState) -> None:
        for part in self.parts:
            part.on_start(state)

    def on_step(self, state: LoopState) -> None:
        for part in self.parts:
            part.on_step(state)

    def on_end(self, state: LoopState) -> None:
        for part in self.parts:
            part.on_end(state)

    def selection(self) -> tuple[torch.Tensor, int, str] | None:
        return self.parts[-1].selection()

    def history(self) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {}
        for part in self.parts:
            out.update(part.history())
        return out

    def state_dict(self) -> dict:
        return {str(i): part.state_dict() for i, part in enumerate(self.parts)}

    def load_state_dict(self, state: dict) -> None:
        for i, part in enumerate(self.parts):
            part.load_state_dict(state[str(i)])
