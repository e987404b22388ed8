"""SURE for Gaussian denoising: return the iterate with the lowest unbiased estimate of its error.

For y = x + n, n ~ N(0, sigma^2 I), Stein's unbiased risk estimate of an estimator h is

    SURE(h) = |h(y) - y|^2 / n - sigma^2 + 2 sigma^2 div_y h(y) / n,

and Monte-Carlo SURE (Ramani, Blu, Unser, IEEE TIP 2008) estimates the divergence with a probe,
div ~ b^T (h(y + eps b) - h(y)) / eps, b ~ N(0, I). For a DIP run the estimator is *the whole run up
to step t*: x_t depends on y mainly through the weights trained on y. That map is not smooth at the
scale a finite difference needs: one Adam step is close to lr * sign(gradient), so a probe of
eps = sigma / 100 changed the output by 15x eps after one step and by ~240x eps after four (Vanilla
DIP, 32 px, measured), and the small-probe estimate was useless.

So the divergence is taken at a finite probe in its recorrupted form, which needs no smoothness
(Pang, Zheng, Quan, Ji, "Recorrupted-to-Recorrupted", CVPR 2021): a twin of the run is trained in
lockstep on y1 = y + alpha sigma b and scored against y2 = y - sigma b / alpha, whose noise is
independent of y1's, so

    R_t = |x_t(y1) - y2|^2 / n - sigma^2 (1 + 1 / alpha^2)

is an unbiased estimate of the twin's mean squared error at every step, whatever the training does.
Expanding x_t(y1) to first order in alpha gives the Monte-Carlo SURE above (its 2 sigma^2 b^T J b term
is the probe divergence) plus zero-mean terms, so R_t is that estimate taken at a finite probe. The
twin starts from the same weights, draws the same random numbers, and gets an input moved only as the
method's initial input moves with y (Vanilla DIP's random z is unchanged, aSeqDIP's z_0 is y1).
Twins come in antithetic pairs (b and -b) and their R_t are averaged: on a 32 px Vanilla DIP problem
one twin sometimes chose an iterate 1.4 dB below the best, the pair stayed within 0.5 dB (4 probe
seeds). The rule returns the *main* run's iterate at the step where the averaged R_t is lowest. Each
pair costs two more runs (three times the time and memory of the plain run).

Rethinking-DIP instead trains on SURE with the divergence taken with respect to the network's input
(its input is y); that divergence is zero for Vanilla DIP's random input, so it is not used here.
"""

from __future__ import annotations

import copy
from typing import Any

import deepinv as dinv
import torch

from .loop import NetworkRunner, _step
from .state import LoopState
from .stopping import MinimumRule


def _clone_generator(g: torch.Generator) -> torch.Generator:
    twin = torch.Generator(device=g.device)
    twin.set_state(g.get_state())
    return twin


def _layout(z: torch.Tensor) -> torch.memory_format:
    channels_last = z.dim() == 4 and z.is_contiguous(memory_format=torch.channels_last) and not z.is_contiguous()
    return torch.channels_last if channels_last else torch.contiguous_format


class MonteCarloSURE(MinimumRule):
    """SURE of the run at a finite probe, from twin runs on recorrupted data (see the module docstring).

    ``hooks`` is the method (its hooks drive the twins). ``sigma`` is the noise std in data units;
    ``alpha`` the probe size as a fraction of sigma (default 0.5: the twins' noise is 1.12 sigma);
    ``pairs`` the number of antithetic twin pairs. With ``decay`` the rule scores exponential moving
    averages of the twins' estimates and returns the main run's average (the EMA output rule combined
    with SURE). The probes are drawn from their own generator seeded with ``seed``.
    """

    name = "sure"

    def __init__(self, hooks: Any, sigma: float, alpha: float = 0.5, pairs: int = 1, every: int = 1,
                 patience: int = 500, decay: float | None = None, halt: bool = True, seed: int = 0,
                 label: str | None = None) -> None:
        if not sigma > 0:
            raise ValueError(f"SURE needs the noise level sigma > 0, got {sigma}")
        if not alpha > 0:
            raise ValueError(f"the SURE probe size alpha must be positive, got {alpha}")
        if pairs < 1:
            raise ValueError(f"SURE needs at least one pair of twin runs, got {pairs}")
        if decay is not None and not 0.0 <= decay < 1.0:
            raise ValueError(f"the EMA decay must lie in [0, 1), got {decay}")
        self.hooks = hooks
        self.sigma = float(sigma)
        self.alpha = float(alpha)
        self.pairs = pairs
        self.decay = decay
        self.seed = seed
        self._saved: list[dict] | None = None
        super().__init__(self._main_estimate, every=every, patience=patience, halt=halt, label=label)

    def reset(self) -> None:
        super().reset()
        self.twins: list[LoopState] = []
        self.probes: list[torch.Tensor] = []  # alpha_k * b_k: the signed probe of each twin
        self._main_average: torch.Tensor | None = None
        self._twin_averages: list[torch.Tensor] | None = None

    # ---- the twin runs --------------------------------------------------------------------------
    def on_start(self, state: LoopState) -> None:
        if not isinstance(state.physics, dinv.physics.Denoising):
            raise ValueError(f"SURE is for Gaussian denoising; this operator is {type(state.physics).__name__}")
        if state.iteration == 0:
            self.reset()
            self._start_twins(state)
        elif self._saved is None:
            raise ValueError("cannot resume SURE: the checkpoint has no twin runs")
        else:
            self._restore_twins(state, self._saved)
            self._saved = None

    def _twin_state(self, state: LoopState, z: torch.Tensor, y: torch.Tensor) -> LoopState:
        net = copy.deepcopy(state.net)
        twin = LoopState(net=net, z=z, y=y, physics=state.physics, optimizers=[],
                         generator=_clone_generator(state.generator), iterations=state.iterations)
        twin.runner = NetworkRunner(net, state.runner.precision)
        twin.optimizers = self.hooks.make_optimizers(twin)
        return twin

    def _start_twins(self, state: LoopState) -> None:
        """Twins at step 0: the main run's weights and draws; inputs moved as the initial input moves with y."""
        y = state.y
        draw = torch.Generator().manual_seed(self.seed)
        for _ in range(self.pairs):
            b = torch.randn(y.shape, generator=draw, dtype=y.dtype).to(y.device)
            for signed in (self.alpha * b, -self.alpha * b):
                y_twin = y + self.sigma * signed
                # for denoising the first estimate is y itself; the same generator state for both calls
                # makes random inputs (DIP's z) cancel and leaves the part of z_0 that depends on y
                g1, g2 = _clone_generator(state.generator), _clone_generator(state.generator)
                with torch.no_grad():
                    shift = (self.hooks.initial_input(y_twin, state.physics, y_twin, g2).to(y.device)
                             - self.hooks.initial_input(y, state.physics, y, g1).to(y.device))
                z = (state.z.detach() + shift).contiguous(memory_format=_layout(state.z))
                twin = self._twin_state(state, z, y_twin)
                twin.extra = copy.deepcopy(state.extra)
                self.twins.append(twin)
                self.probes.append(signed)

    def on_step(self, state: LoopState) -> None:
        if self.stopped_at is not None:
            return
        for twin in self.twins:
            _step(self.hooks, twin)
        if self.decay is not None:
            xs = [self.hooks.estimate(t).detach() for t in (state, *self.twins)]
            if self._twin_averages is None:
                self._main_average, *self._twin_averages = [x.clone() for x in xs]
            else:
                for avg, x in zip((self._main_average, *self._twin_averages), xs):
                    avg.mul_(self.decay).add_(x, alpha=1.0 - self.decay)
        super().on_step(state)

    def _main_estimate(self, state: LoopState) -> torch.Tensor:
        return self._main_average if self._main_average is not None else self.hooks.estimate(state)

    def _twin_estimate(self, k: int) -> torch.Tensor:
        return self._twin_averages[k] if self._twin_averages is not None else self.hooks.estimate(self.twins[k])

    def score(self, state: LoopState, x: torch.Tensor) -> torch.Tensor:
        """Mean over twins of R_t: the twin's estimate against y - sigma b / alpha, less both noises."""
        with torch.no_grad():
            risks = []
            for k, probe in enumerate(self.probes):  # probe = +-alpha b, so probe / alpha^2 = +-b / alpha
                target = state.y - (self.sigma / self.alpha**2) * probe
                risks.append((self._twin_estimate(k) - target).square().mean() - self.sigma**2 * (1 + self.alpha**-2))
            return torch.stack(risks).mean()

    # ---- checkpoints: the twins are part of the rule's state -----------------------------------
    def state_dict(self) -> dict:
        out = super().state_dict()
        out["twins"] = [{"net": t.net.state_dict(), "optimizers": [o.state_dict() for o in t.optimizers],
                         "z": t.z.detach().cpu(), "y": t.y.cpu(), "generator": t.generator,
                         "output": None if t.output is None else t.output.cpu(), "extra": dict(t.extra),
                         "probe": p.cpu()} for t, p in zip(self.twins, self.probes)]
        out["averages"] = None if self._twin_averages is None else [
            a.cpu() for a in (self._main_average, *self._twin_averages)]
        return out

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self._saved = {"twins": state.get("twins") or [], "averages": state.get("averages")}

    def _restore_twins(self, state: LoopState, saved: dict) -> None:
        if len(saved["twins"]) != 2 * self.pairs:
            raise ValueError("cannot resume SURE: the checkpoint holds another number of twin runs")
        dev = state.z.device
        self.twins, self.probes = [], []
        for s in saved["twins"]:
            twin = self._twin_state(state, s["z"].to(dev).contiguous(memory_format=_layout(state.z)), s["y"].to(dev))
            twin.net.load_state_dict(s["net"])
            for opt, o in zip(twin.optimizers, s["optimizers"], strict=True):
                opt.load_state_dict(o)
            twin.generator = s["generator"]
            twin.output = None if s["output"] is None else s["output"].to(dev)
            twin.iteration = state.iteration
            twin.extra = {k: (v.to(dev) if isinstance(v, torch.Tensor) else v) for k, v in s["extra"].items()}
            self.twins.append(twin)
            self.probes.append(s["probe"].to(dev))
        if saved["averages"] is not None:
            self._main_average, *self._twin_averages = [a.to(dev) for a in saved["averages"]]
