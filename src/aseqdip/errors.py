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


class DivergedError(NonFiniteError):
    """The network output left the image's range by orders of magnitude: a diverged run, stopped like a
    non-finite one (exit status 3) instead of returning an image of huge numbers."""

    def __init__(self, step: int, peak: float, scale: float, total: int | None = None) -> None:
        RuntimeError.__init__(self)
        self.step, self.quantity, self.total = step, "network output", total
        self.kept = "nothing was written"
        of = f" of {total}" if total else ""
        self.args = (f"the run diverged at step {step}{of}: the network output reached {peak:.3g}, more than "
                     f"{DIVERGENCE_FACTOR:g} times the first estimate's range ({scale:.3g}); likely cause: a "
                     f"learning rate (--lr) or a loss weight too large for this problem",)


DIVERGENCE_FACTOR = 1e3  # the output's largest value over the first estimate's (at least 1) that counts as diverged


class StorageError(OSError):
    """A file could not be written (full disk, file size limit, read-only folder ...): one line naming it."""

    def __init__(self, path: object, exc: OSError) -> None:
        super().__init__(exc.errno, exc.strerror or str(exc) or type(exc).__name__)
        self.path = path
        self.kept = "nothing partial was left"

    def __str__(self) -> str:
        code = f" (errno {self.errno})" if self.errno is not None else ""
        return f"could not write {self.path}: {self.strerror}{code}"
