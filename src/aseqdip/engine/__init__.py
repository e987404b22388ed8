"""The shared optimisation loop, its state, callbacks and precision handling."""

from .callbacks import Callback, Progress, TrackLoss, TrackMetric
from .loop import Hooks, forward, run, seed_everything
from .precision import Precision, resolve_device
from .state import LoopState, Reconstruction

__all__ = ["Callback", "Hooks", "LoopState", "Precision", "Progress", "Reconstruction", "TrackLoss",
           "TrackMetric", "forward", "resolve_device", "run", "seed_everything"]
