"""Stopping rules: callbacks that end a run early and say which iterate to return.

A stopping rule watches the method's estimate after every step (it never sees the ground truth),
sets ``state.stop`` when it decides, and offers its chosen iterate through :meth:`Callback.selection`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .callbacks import Callback
from .state import LoopState


class WindowedMovingVariance(Callback):
    """ES-WMV early stopping (Wang, Li, Zhuang, Chen, Liang, Sun, "Early Stopping for Deep Image Prior", TMLR 2023).

    After each step the last ``window`` estimates x_{t-W+1..t} give the windowed moving variance

        VAR_t = 1/W * sum_w  mean((x_{t-w} - xbar_t)^2),     xbar_t = 1/W * sum_w x_{t-w}

    (``mean`` over pixels, as the authors' code). The rule remembers the iterate where VAR_t was
    lowest; when ``patience`` consecutive variances fail to go below that minimum the run stops and
    that iterate is returned. Defaults W = 100, P = 1000 are the authors' (sun-umn/Early_Stopping_for_DIP,
    ES_WMV.ipynb: ``buffer_size = 100``, ``patience = 1000``).

    ``estimate`` maps the loop state to the image being watched (a method's :meth:`estimate`). The
    window is a ring buffer on the estimate's device, so a step costs O(W * pixels) and no copies to
    the host beyond one scalar comparison.
    """

    name = "wmv"

    def __init__(self, estimate: Callable[[LoopState], torch.Tensor], window: int = 100, patience: int = 1000) -> None:
        if window < 2:
            raise ValueError(f"the variance window must hold at least 2 iterates, got {window}")
        if patience < 1:
            raise ValueError(f"patience must be at least 1, got {patience}")
        self.estimate = estimate
        self.window = window
        self.patience = patience
        self.reset()

    def reset(self) -> None:
        self._buffer: torch.Tensor | None = None
        self._filled = 0
        self._wait = 0
        self.best_variance = float("inf")
        self.best_iteration: int | None = None
        self.stopped_at: int | None = None
        self._best_image: torch.Tensor | None = None
        self._iters: list[int] = []
        self._values: list[float] = []

    def on_start(self, state: LoopState) -> None:
        if state.iteration == 0:  # a fresh run (a resumed one arrives with its state restored)
            self.reset()

    def state_dict(self) -> dict:
        def cpu(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.cpu()

        return {"buffer": cpu(self._buffer), "filled": self._filled, "wait": self._wait,
                "best_variance": self.best_variance, "best_iteration": self.best_iteration,
                "stopped_at": self.stopped_at, "best_image": cpu(self._best_image),
                "iters": list(self._iters), "values": list(self._values)}

    def load_state_dict(self, state: dict) -> None:
        self._buffer, self._filled, self._wait = state["buffer"], int(state["filled"]), int(state["wait"])
        self.best_variance, self.best_iteration = float(state["best_variance"]), state["best_iteration"]
        self.stopped_at, self._best_image = state["stopped_at"], state["best_image"]
        self._iters, self._values = list(state["iters"]), list(state["values"])

    def variance(self) -> torch.Tensor:
        """VAR_t of the full window (call only once ``window`` iterates are in)."""
        buf = self._buffer
        return (buf - buf.mean(dim=0, keepdim=True)).abs().square().mean()

    def on_step(self, state: LoopState) -> None:
        if self.stopped_at is not None:
            return
        x = self.estimate(state).detach()
        flat = torch.view_as_real(x).reshape(-1) if torch.is_complex(x) else x.reshape(-1)
        if self._buffer is None:
            self._buffer = torch.empty((self.window, flat.numel()), dtype=torch.float32, device=flat.device)
        elif self._buffer.device != flat.device:  # restored from a checkpoint on the CPU
            self._buffer = self._buffer.to(flat.device)
            self._best_image = None if self._best_image is None else self._best_image.to(flat.device)
        self._buffer[self._filled % self.window] = flat
        self._filled += 1
        if self._filled < self.window:
            return
        var = float(self.variance())
        self._iters.append(state.iteration)
        self._values.append(var)
        if var < self.best_variance:
            self.best_variance = var
            self.best_iteration = state.iteration
            self._best_image = x.clone()
            self._wait = 0
            return
        self._wait += 1
        if self._wait >= self.patience:
            self.stopped_at = state.iteration
            state.stop = True
            state.stop_reason = (f"ES-WMV: no new variance minimum for {self.patience} steps "
                                 f"(window {self.window}); minimum at iteration {self.best_iteration}")

    def selection(self) -> tuple[torch.Tensor, int, str] | None:
        """The iterate at the variance minimum, once the window has filled (else defer to the method)."""
        if self._best_image is None:
            return None
        return self._best_image, int(self.best_iteration), "es-wmv"

    def history(self) -> dict[str, list[float]]:
        if not self._values:
            return {}
        return {"wmv_iteration": list(self._iters), "wmv": list(self._values)}
