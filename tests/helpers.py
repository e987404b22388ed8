"""Shared test helpers (not fixtures)."""

from __future__ import annotations

from aseqdip.engine.callbacks import Callback


class Crash(Callback):
    """Interrupt a run at iteration ``at``, as a killed process would (for resume tests)."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_step(self, state):
        if state.iteration == self.at:
            raise KeyboardInterrupt("simulated kill")
