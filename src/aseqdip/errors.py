"""Errors the command turns into one line on stderr: what the user gave us, a run that diverged, an interruption."""

from __future__ import annotations


class UserInputError(ValueError):
    """A problem with the user's input, reported as one clear line and exit status 2."""


class NonFiniteError(RuntimeError):
    """The loss or the image became NaN or infinite: the run stopped at ``step`` instead of returning garbage.

    ``quantity`` names what went non-finite (``"loss"``, ``"network output"``, ``"returned image"``); the
    message adds the usual causes. ``kept`` says what is left on disk (the pipeline fills it in). The
    command reports it in one line with exit status 3.
    """

    def __init__(self, step: int, quantity: str, total: int | None = None) -> None:
        self.step, self.quantity, self.total = step, quantity, total
        self.kept = "nothing was written"
        of = f" of {total}" if total else ""
        super().__init__(f"the {quantity} became NaN or infinite at step {step}{of}; likely cause: a learning rate "
                         f"(--lr) or a loss weight (--lam, ...) too large for this problem, or measurements far "
                         f"outside the expected range")


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGINT) during a run, with a note of what was kept on disk and how to continue."""

    def __init__(self, kept: str) -> None:
        super().__init__(kept)
        self.kept = kept
