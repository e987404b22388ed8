"""A new method in one small class: Deep Image Prior with a Huber data term.

Run it from the repository root (a few seconds on a laptop CPU):

    .venv/bin/python examples/huber_dip.py

It subclasses Vanilla DIP and overrides a single hook, ``loss``; the shared loop does the rest
(device, precision, seeding, callbacks, curves, ``--stop auto``). ``@register_method`` makes it a
``--method`` of the command line, and its ``options`` become flags (``--delta``) recorded in metrics.json
and the run's fingerprint. Inside the package the same class in a new module of ``aseqdip/methods/`` is
the whole change; another package registers it under the ``aseqdip.methods`` entry-point group.
See docs/methods.md, "Adding a method".
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from aseqdip.cli import main
from aseqdip.engine.state import LoopState
from aseqdip.methods import Option, VanillaDIP, register_method


@register_method
class HuberDIP(VanillaDIP):
    """Vanilla DIP fitting the measurements with a Huber loss (quadratic below ``delta``, linear above).

    Robust to a few grossly wrong measurements (impulse noise, dead pixels), which plain DIP fits.
    """

    name: ClassVar[str] = "huberdip"
    options: ClassVar[tuple[Option, ...]] = (
        Option("delta", float, "huberdip: where the Huber loss turns from quadratic to linear (default 0.05)"),
    )

    def __init__(self, iterations: int = 4000, delta: float = 0.05, **kwargs: Any) -> None:
        super().__init__(iterations=iterations, **kwargs)
        if delta <= 0:
            raise ValueError(f"delta must be positive, got {delta}")  # the CLI turns this into exit status 2
        self.delta = delta

    def hyperparameters(self) -> dict[str, Any]:
        return {**super().hyperparameters(), "delta": self.delta}  # recorded in metrics.json

    def loss(self, state: LoopState, out: torch.Tensor) -> torch.Tensor:
        residual = state.physics.A(out) - state.y
        return torch.nn.functional.huber_loss(residual, torch.zeros_like(residual), delta=self.delta)


if __name__ == "__main__":
    from aseqdip.io import load_image
    from aseqdip.tasks import Denoise

    # from Python: any deepinv physics, x = model(y, physics)
    problem = Denoise(25).simulate(load_image("skimage:astronaut", size=48), seed=0)
    x = HuberDIP(iterations=100, precision="fp32")(problem.y, problem.physics)
    print(f"noisy {problem.metrics(problem.y)['psnr']:.2f} dB -> HuberDIP {problem.metrics(x)['psnr']:.2f} dB")

    # from the command line: registered, it is --method huberdip, with its own --delta
    main(["run", "--task", "denoise", "--image", "skimage:astronaut", "--size", "48", "--method", "huberdip",
          "--delta", "0.1", "--iterations", "100", "--out", "runs/huberdip-example", "--overwrite", "--no-progress"])
