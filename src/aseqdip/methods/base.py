"""The base of every DIP-family method: hook defaults and the deepinv ``model(y, physics)`` call.

A method subclasses :class:`DIPMethod` and overrides only the hooks it changes (see
``methods/aseqdip.py`` for the shortest real example); the loop itself lives in ``engine/loop.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import deepinv as dinv
import torch
from torch import nn

from ..engine import callbacks as cbs
from ..engine.checkpoint import Checkpointer
from ..engine.loop import forward, run
from ..engine.precision import fused_adam_supported
from ..engine.state import LoopState, Reconstruction
from ..nets import NETWORKS
from ..physics.defaults import default_network, first_estimate


def squared_error(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean squared error that also accepts complex tensors (the ||.||^2 terms of the paper, averaged)."""
    diff = a - b
    return (diff.real.square() + diff.imag.square()).mean() if torch.is_complex(diff) else diff.square().mean()


def residual_norm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """||a - b||_2, unsquared (the loss form of the aSeqDIP authors' MRI and CT scripts); complex accepted."""
    diff = a - b
    return torch.linalg.vector_norm(torch.view_as_real(diff) if torch.is_complex(diff) else diff)


class DIPMethod(dinv.models.Reconstructor):
    """A dataless reconstructor on the shared loop: ``x = model(y, physics)``.

    Hook defaults give Vanilla DIP's behaviour except for the input and the loss, which each method
    defines. ``network`` is a name from :data:`aseqdip.nets.NETWORKS`, a callable
    ``(in_channels, out_channels, generator) -> nn.Module``, or ``"auto"`` for the paper's network for
    the operator (medium U-Net for MRI/CT, skip network for inpainting, shallow U-Net otherwise).
    """

    name: ClassVar[str] = "base"
    # True when B problems stacked into one run (engine/stacked.py) each get exactly their single run:
    # the loss must be a mean over entries, and nothing in the network may depend on the batch
    batchable: bool = True
    # What the output rules (aseqdip.rules) and auto (aseqdip.auto) need to know of a method: they ask
    # these, never the method's type, so a new method declares them here and touches no other module.
    iterative: ClassVar[bool] = True  # its iterates are there for a rule to choose among
    stops_itself: ClassVar[bool] = False  # it ends the run by its own rule (ES-DIP), so --stop cannot apply
    reads_every_measurement: ClassVar[bool] = False  # its loss reads every entry of y: no held-out split
    auto_stop: ClassVar[str] = "discrepancy"  # the rule --stop auto gives it ("none": the method as published)
    auto_settings: ClassVar[dict[str, Any]] = {}  # keyword arguments --stop auto sets where the user set none

    def __init__(
        self,
        iterations: int = 4000,
        lr: float = 1e-4,
        network: str | Callable[..., nn.Module] = "auto",
        device: str = "auto",
        precision: str = "auto",
        seed: int = 0,
        progress: bool = False,
    ) -> None:
        super().__init__()
        if iterations < 1:
            raise ValueError(f"iterations must be at least 1, got {iterations}")
        if lr <= 0:
            raise ValueError(f"learning rate must be positive, got {lr}")
        self.iterations = iterations
        self.lr = lr
        self.network = network
        self.device_name = device
        self.precision = precision
        self.seed = seed
        self.progress = progress

    # ---- the deepinv entry points -------------------------------------------------------------
    def forward(self, y: torch.Tensor, physics: Any, rule: Any = None, **kwargs: Any) -> torch.Tensor:
        """deepinv's ``x = model(y, physics)``: the image the default output rule returns (``auto``).

        ``rule`` is an :class:`aseqdip.rules.OutputRule` (``OutputRule(stop="none")``: the method's fixed
        budget, as :meth:`reconstruct` runs it).
        """
        from ..rules import reconstruct

        return reconstruct(self, y, physics, rule, **kwargs).image

    def reconstruct(
        self,
        y: torch.Tensor,
        physics: Any,
        *,
        x0: torch.Tensor | None = None,
        monitor: Callable[[torch.Tensor], torch.Tensor] | None = None,
        callbacks: Sequence[cbs.Callback] = (),
        track_every: int = 1,
        checkpoint: str | Path | None = None,
        checkpoint_every: int = 500,
        resume: bool = False,
        checkpoint_fingerprint: dict[str, Any] | None = None,
    ) -> Reconstruction:
        """Run the method and return the image with its run record.

        ``monitor`` maps an estimate to a scalar (e.g. PSNR against a ground truth) that is recorded
        along the run for curves; it is an oracle and never chooses the output. With ``checkpoint``
        the run is saved there every ``checkpoint_every`` iterations; ``resume=True`` continues from
        that file when it exists, if it was saved with the same ``checkpoint_fingerprint`` (the caller's
        record of the settings, ``aseqdip.fingerprint``) and by the same method and settings.
        """
        if x0 is None:
            with torch.no_grad():
                x0 = first_estimate(physics, y)
        self.validate(y, physics)
        extra: list[cbs.Callback] = [cbs.TrackLoss(track_every)]
        if monitor is not None:
            extra.append(cbs.TrackMetric(monitor, self.returned_estimate, "psnr", track_every))
        if self.progress:
            extra.append(cbs.Progress(description=self.name))
        if checkpoint is not None:
            extra.append(Checkpointer(checkpoint, checkpoint_every, fingerprint=checkpoint_fingerprint))
        return run(self, y, physics, x0, iterations=self.iterations, device=self.device_name,
                   precision=self.precision, seed=self.seed, callbacks=[*callbacks, *extra],
                   resume_from=checkpoint if resume else None)

    def validate(self, y: torch.Tensor, physics: Any) -> None:
        """Check that the method has what it needs for this problem (override to add checks)."""

    def hyperparameters(self) -> dict[str, Any]:
        """Every setting that shapes the result, for metrics.json."""
        net = self.network if isinstance(self.network, str) else getattr(self.network, "__name__", "custom")
        return {"iterations": self.iterations, "lr": self.lr, "network": net, "precision": self.precision,
                "seed": self.seed}

    # ---- hooks with defaults ------------------------------------------------------------------
    def build_network(self, x0: torch.Tensor, physics: Any, generator: torch.Generator) -> nn.Module:
        channels = self.image_channels(x0)
        factory = self.network
        if factory == "auto":
            factory = default_network(physics)
        if isinstance(factory, str):
            if factory not in NETWORKS:
                raise ValueError(f"unknown network {factory!r}; choose from {sorted(NETWORKS)}")
            factory = NETWORKS[factory]
        return factory(self.input_channels(x0), channels, generator=generator)

    def image_channels(self, x0: torch.Tensor) -> int:
        return x0.shape[1]

    def input_channels(self, x0: torch.Tensor) -> int:
        return x0.shape[1]

    def make_optimizers(self, state: LoopState) -> list[torch.optim.Optimizer]:
        fused = True if fused_adam_supported(state.z.device) else None
        return [torch.optim.Adam(state.net.parameters(), lr=self.lr, fused=fused)]

    def network_input(self, state: LoopState) -> torch.Tensor:
        return state.z

    def data_fidelity(self, state: LoopState, out: torch.Tensor) -> torch.Tensor:
        """||A f - y||^2 (as a mean): works for any deepinv physics, linear or not."""
        return squared_error(state.physics.A(out), state.y)

    def loss(self, state: LoopState, out: torch.Tensor) -> torch.Tensor:
        return self.data_fidelity(state, out)

    def after_step(self, state: LoopState) -> None:
        pass

    def estimate(self, state: LoopState) -> torch.Tensor:
        """The method's current image (for curves and stopping rules): the latest network output."""
        return state.output

    def final_image(self, state: LoopState, image: torch.Tensor) -> torch.Tensor:
        """What the run returns of the image its output rule chose (default: that image as it is).

        Applied after every rule, so stopping rules still watch :meth:`estimate` (aSeqDIP's data-consistent
        output overrides it); the oracle PSNR curve is taken of this, so that it scores what would be returned.
        """
        return image

    def returned_estimate(self, state: LoopState) -> torch.Tensor:
        """:meth:`estimate` as the run would return it (:meth:`final_image`): the oracle curve's image."""
        return self.final_image(state, self.estimate(state))

    def clears_gradients(self, state: LoopState) -> bool:
        """True when the step after ``state.iteration`` starts from zero gradients (the default, every step)."""
        return True

    def output(self, state: LoopState) -> tuple[torch.Tensor, int, str]:
        """The image returned at the end: the network at its final weights on its (unperturbed) input."""
        with torch.no_grad():
            return forward(state, state.z), state.iteration, "last"
