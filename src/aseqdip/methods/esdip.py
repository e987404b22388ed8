"""ES-DIP (Wang, Li, Zhuang, Chen, Liang, Sun, "Early Stopping for Deep Image Prior", TMLR 2023).

Vanilla DIP run under the windowed-moving-variance stopping rule
(:class:`~aseqdip.engine.stopping.WindowedMovingVariance`): it stops once the variance of the last W
iterates has not reached a new minimum for P steps and returns the iterate at that minimum.
``Reconstruction.iterations`` is the stopping iteration, ``iteration_returned`` the detected one, and
``info["stop_reason"]`` says why it stopped. Defaults W = 100, P = 1000, Adam lr 0.01 are those of
the authors' ES-WMV notebook.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch

from ..engine.callbacks import Callback
from ..engine.state import Reconstruction
from ..engine.stopping import WindowedMovingVariance, check_window
from .dip import VanillaDIP
from .registry import Option, register_method


@register_method
class ESDIP(VanillaDIP):
    """Vanilla DIP with ES-WMV early stopping (window ``window``, patience ``patience``)."""

    name: ClassVar[str] = "esdip"
    stops_itself: ClassVar[bool] = True
    auto_stop: ClassVar[str] = "none"
    options: ClassVar[tuple[Option, ...]] = (  # the flags of the wmv rule, which is this method's
        Option("window", int, "esdip, --stop wmv: variance window W (default 100)", flag="--es-window"),
        Option("patience", int, "esdip, --stop wmv: patience P in steps (default 1000)", flag="--es-patience"),
    )

    def __init__(self, iterations: int = 4000, window: int = 100, patience: int = 1000, **kwargs: Any) -> None:
        super().__init__(iterations=iterations, **kwargs)
        check_window(window, patience)
        self.window = window
        self.patience = patience

    def hyperparameters(self) -> dict[str, Any]:
        return {**super().hyperparameters(), "window": self.window, "patience": self.patience}

    def reconstruct(self, y: torch.Tensor, physics: Any, *, callbacks: Sequence[Callback] = (),
                    **kwargs: Any) -> Reconstruction:
        """Vanilla DIP's run with the stopping rule attached (it also chooses the returned iterate)."""
        rule = WindowedMovingVariance(self.estimate, window=self.window, patience=self.patience)
        return super().reconstruct(y, physics, callbacks=[*callbacks, rule], **kwargs)
