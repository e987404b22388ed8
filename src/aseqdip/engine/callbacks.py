"""Callbacks on the optimisation loop: progress, metric tracking, stopping, output selection.

A callback sees the :class:`LoopState` after every step. It may record things, set ``state.stop``,
or, as an output rule, offer the image to return via :meth:`Callback.selection`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from .state import LoopState


class Callback:
    """Base class: override what you need."""

    def on_start(self, state: LoopState) -> None:  # noqa: D401 - hook
        pass

    def on_step(self, state: LoopState) -> None:
        pass

    def on_end(self, state: LoopState) -> None:
        pass

    def selection(self) -> tuple[torch.Tensor, int, str] | None:
        """An output rule returns (image, iteration, rule name); others return None."""
        return None

    def history(self) -> dict[str, list[float]]:
        return {}

    def state_dict(self) -> dict:
        """What a checkpoint must keep to resume this callback exactly (tensors and plain values)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class Series:
    """A curve recorded along a run: values at iterations, for metrics.json, plots and checkpoints.

    Values may be floats or 0-d device tensors; tensors stay on the device until the curve is read, so
    recording never waits for the device.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.clear()

    def clear(self) -> None:
        self.iterations: list[int] = []
        self.values: list[Any] = []

    def add(self, iteration: int, value: float | torch.Tensor) -> None:
        self.iterations.append(iteration)
        self.values.append(value)

    def __len__(self) -> int:
        return len(self.values)

    def history(self) -> dict[str, list[float]]:
        """``{name_iteration: [...], name: [...]}``, or nothing when no value was recorded."""
        if not self.values:
            return {}
        # a resumed run holds the values before its checkpoint as CPU tensors, the later ones on the
        # run's device: bring every value to one device (the last one's), then read them all at once
        device = next((v.device for v in reversed(self.values) if isinstance(v, torch.Tensor)), None)
        if device is None:
            values = [float(v) for v in self.values]
        else:
            values = torch.stack([torch.as_tensor(v, dtype=torch.float32, device=device).reshape(())
                                  for v in self.values]).cpu().tolist()
        return {f"{self.name}_iteration": list(self.iterations), self.name: values}

    def state_dict(self) -> dict:
        return {"iters": list(self.iterations),
                "values": [v.cpu() if isinstance(v, torch.Tensor) else v for v in self.values]}

    def load_state_dict(self, state: dict) -> None:
        self.iterations, self.values = list(state["iters"]), list(state["values"])


class Progress(Callback):
    """A tqdm bar. The loss is shown every ``every`` steps only, to keep host syncs rare."""

    def __init__(self, every: int = 50, description: str = "reconstructing") -> None:
        self.every = every
        self.description = description
        self._bar = None

    def on_start(self, state: LoopState) -> None:
        from tqdm.auto import tqdm

        self._bar = tqdm(total=state.iterations, initial=state.iteration, desc=self.description,
                         unit="it", dynamic_ncols=True, leave=False)

    def on_step(self, state: LoopState) -> None:
        self._bar.update(1)
        if state.iteration % self.every == 0 and state.loss is not None:
            self._bar.set_postfix(loss=f"{state.loss.item():.3e}", refresh=False)

    def on_end(self, state: LoopState) -> None:
        if self._bar is not None:
            self._bar.close()


class TrackedCurve(Callback):
    """A callback that records one :class:`Series` every ``every`` steps (and at the last step) and keeps it
    across checkpoints; subclasses say what :meth:`value` records (None: nothing this step)."""

    def __init__(self, name: str, every: int = 1) -> None:
        self.name = name
        self.every = every
        self.curve = Series(name)

    def value(self, state: LoopState) -> torch.Tensor | None:
        raise NotImplementedError

    def on_step(self, state: LoopState) -> None:
        if state.iteration % self.every == 0 or state.iteration == state.iterations:
            value = self.value(state)
            if value is not None:
                self.curve.add(state.iteration, value.detach().float().reshape(()))

    def history(self) -> dict[str, list[float]]:
        return self.curve.history()

    def state_dict(self) -> dict:
        return self.curve.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.curve.load_state_dict(state)


class TrackMetric(TrackedCurve):
    """Record ``metric(estimate)`` every ``every`` steps, without a host sync inside the loop.

    Given a ground truth this is the oracle curve of PSNR against iteration. It only observes: it
    never changes what the method returns.
    """

    def __init__(self, metric: Callable[[torch.Tensor], torch.Tensor], estimate: Callable[[LoopState], torch.Tensor],
                 name: str = "psnr", every: int = 1) -> None:
        super().__init__(name, every)
        self.metric = metric
        self.estimate = estimate

    def value(self, state: LoopState) -> torch.Tensor:
        with torch.no_grad():
            return self.metric(self.estimate(state))


class TrackLoss(TrackedCurve):
    """Record the training loss every ``every`` steps (kept on the device until the end)."""

    def __init__(self, every: int = 1) -> None:
        super().__init__("loss", every)

    def value(self, state: LoopState) -> torch.Tensor | None:
        return state.loss
