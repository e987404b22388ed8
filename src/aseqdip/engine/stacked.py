"""Many independent problems in one vectorised run of the one loop (``engine.loop.run``).

B problems of the same shape, each with its own network weights and seed, are solved together: the B
networks become one :class:`StackedNetwork` (weights stacked along a new first axis, applied with
``torch.func.vmap``, which turns the convolutions into grouped ones), the B operators one
:class:`PhysicsBatch`, and the method's hooks are reused unchanged except for two things
(:class:`BatchedHooks`): each problem's network and input are drawn from its own generator, and the
loss is multiplied by B. The data and autoencoding terms are means over every element, so for B
equal-size problems the batch mean is the mean of the per-problem means; times B it is their sum,
whose gradient for problem i's weights is exactly problem i's single-run gradient. Adam is
element-wise, so one Adam on the stacked weights is B separate Adams.

The result matches B one-at-a-time runs up to float rounding for methods whose steps draw no random
numbers (aSeqDIP, Vanilla DIP without input noise): per-step draws (SGLD, DIP's input noise) come from
the run's single generator here. BatchNorm always uses batch statistics (as it does in training, the
only mode the loop uses), so its running statistics are dropped.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, replace_all_batch_norm_modules_, stack_module_state, vmap

from ..errors import UserInputError
from .callbacks import Callback
from .loop import run
from .state import LoopState, Reconstruction


class StackedNetwork(nn.Module):
    """B networks of one architecture with their own weights, applied to a batch of B inputs.

    Input and output are (B, C, H, W); item i goes through network i. The parameters are the stacked
    tensors (B, *shape), so an optimiser on ``parameters()`` trains all B networks at once.
    """

    def __init__(self, nets: Sequence[nn.Module]) -> None:
        super().__init__()
        if not nets:
            raise ValueError("StackedNetwork needs at least one network")
        template = copy.deepcopy(nets[0]).to("meta")
        replace_all_batch_norm_modules_(template)  # batch statistics only: no running-stat writes under vmap
        self._template = [template]  # in a list so that its meta tensors are not registered here
        params, buffers = stack_module_state(list(nets))
        self._param_names = list(params)
        self._buffer_names = [name for name, _ in template.named_buffers()]
        for name, value in params.items():
            self.register_parameter(_slot(name), nn.Parameter(value.detach().clone()))
        for name in self._buffer_names:
            self.register_buffer(_slot(name), buffers[name].clone())
        self.size = len(nets)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] != self.size:
            raise ValueError(f"expected a batch of {self.size} inputs, got {x.shape[0]}")
        params = {name: getattr(self, _slot(name)) for name in self._param_names}
        buffers = {name: getattr(self, _slot(name)) for name in self._buffer_names}
        template = self._template[0]

        def one(p: dict, b: dict, xi: torch.Tensor) -> torch.Tensor:
            return functional_call(template, (p, b), (xi.unsqueeze(0),)).squeeze(0)

        return vmap(one)(params, buffers, x)

    def to(self, *args: Any, **kwargs: Any) -> StackedNetwork:
        # Stacked conv weights are 5-D, which channels_last cannot describe; the vmapped convolutions
        # take their layout from the input (which the loop makes channels_last when it wants it).
        kwargs.pop("memory_format", None)
        return super().to(*args, **kwargs)


def _slot(name: str) -> str:
    return name.replace(".", "__")


class PhysicsBatch(nn.Module):
    """B operators on a batch of B images, item by item: ``A(x)[i] = A_i(x[i])``.

    The operators run in a Python loop; they are cheap next to the network. Only ``A`` and
    ``A_adjoint`` exist here, so a method that needs more of its operator (e.g. aSeqDIP's
    data-consistent update) says so through its own ``validate``.
    """

    def __init__(self, operators: Sequence[Any]) -> None:
        super().__init__()
        self.operators = list(operators)
        self._modules_list = nn.ModuleList([op for op in self.operators if isinstance(op, nn.Module)])

    def A(self, x: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        return torch.cat([op.A(x[i : i + 1], **kwargs) for i, op in enumerate(self.operators)])

    def A_adjoint(self, y: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        return torch.cat([op.A_adjoint(y[i : i + 1], **kwargs) for i, op in enumerate(self.operators)])


class BatchedHooks:
    """A method's hooks for B problems at once (see the module docstring for why this is exact)."""

    def __init__(self, method: Any, physics: Sequence[Any], x0s: Sequence[torch.Tensor], seeds: Sequence[int]) -> None:
        self.method = method
        self.physics = list(physics)
        self.x0s = list(x0s)
        self.generators = [torch.Generator().manual_seed(int(s)) for s in seeds]

    def build_network(self, x0: torch.Tensor, physics: Any, generator: torch.Generator) -> nn.Module:
        nets = [self.method.build_network(x0[i : i + 1], op, g)
                for i, (op, g) in enumerate(zip(self.physics, self.generators))]
        return StackedNetwork(nets)

    def initial_input(self, y: torch.Tensor, physics: Any, x0: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        inputs = [self.method.initial_input(y[i : i + 1], op, x0[i : i + 1], g).to(x0.device)
                  for i, (op, g) in enumerate(zip(self.physics, self.generators))]
        return torch.cat(inputs)

    def loss(self, state: LoopState, out: torch.Tensor) -> torch.Tensor:
        return len(self.generators) * self.method.loss(state, out)

    def make_optimizers(self, state: LoopState) -> list[torch.optim.Optimizer]:
        return self.method.make_optimizers(state)

    def network_input(self, state: LoopState) -> torch.Tensor:
        return self.method.network_input(state)

    def after_step(self, state: LoopState) -> None:
        self.method.after_step(state)

    def estimate(self, state: LoopState) -> torch.Tensor:
        return self.method.estimate(state)

    def output(self, state: LoopState) -> tuple[torch.Tensor, int, str]:
        return self.method.output(state)

    def final_image(self, state: LoopState, image: torch.Tensor) -> torch.Tensor:
        return self.method.final_image(state, image)

    def clears_gradients(self, state: LoopState) -> bool:
        return self.method.clears_gradients(state)


def reconstruct_many(
    method: Any,
    problems: Sequence[Any],
    seeds: Sequence[int] | None = None,
    *,
    callbacks: Sequence[Callback] = (),
) -> list[Reconstruction]:
    """Solve B independent problems (objects with ``y``, ``physics``, ``x0``) in one vectorised run.

    ``method`` is a :class:`~aseqdip.methods.base.DIPMethod`; its iterations, device and precision
    apply to all. Problem i uses seed ``seeds[i]`` (default: ``method.seed + i``), so its result is the
    one ``method`` with ``seed=seeds[i]`` gives alone. The problems must have the same shapes.
    ``seconds`` in every returned record is the time of the whole batch; callbacks see the whole batch.
    """
    problems = list(problems)
    if not problems:
        raise UserInputError("reconstruct_many needs at least one problem")
    seeds = [method.seed + i for i in range(len(problems))] if seeds is None else [int(s) for s in seeds]
    if len(seeds) != len(problems):
        raise UserInputError(f"got {len(seeds)} seeds for {len(problems)} problems")
    if not method.batchable:
        raise UserInputError(f"{method.name} with these settings cannot be stacked exactly (a loss that is not a "
                             f"mean, or a network scale fitted per problem); run the problems one at a time")
    ys, x0s, ops = [], [], []
    for i, p in enumerate(problems):
        y, x0 = p.y, p.x0
        if x0 is None:
            from ..physics.defaults import first_estimate

            with torch.no_grad():
                x0 = first_estimate(p.physics, y)
        if y.shape[0] != 1 or x0.shape[0] != 1:
            raise UserInputError(f"problem {i}: each problem must hold one image (batch of 1)")
        if y.shape != problems[0].y.shape or x0.shape != (x0s[0].shape if x0s else x0.shape):
            raise UserInputError(f"problem {i}: shapes differ from problem 0 (y {tuple(y.shape)} vs "
                                 f"{tuple(problems[0].y.shape)}); batch only problems of one size")
        method.validate(y, p.physics)
        ys.append(y)
        x0s.append(x0)
        ops.append(p.physics)
    physics = PhysicsBatch(ops)
    method.validate(torch.cat(ys), physics)  # e.g. aSeqDIP's data-consistent update needs the operator's type
    hooks = BatchedHooks(method, physics.operators, x0s, seeds)
    result = run(hooks, torch.cat(ys), physics, torch.cat(x0s), iterations=method.iterations,
                 device=method.device_name, precision=method.precision, seed=seeds[0], callbacks=callbacks)
    out = []
    for i, seed in enumerate(seeds):
        info = {**result.info, "batch_size": len(problems), "batch_index": i, "seed": seed,
                "seconds_are_for_the_whole_batch": True}
        out.append(Reconstruction(image=result.image[i : i + 1], iterations=result.iterations,
                                  iteration_returned=result.iteration_returned, seconds=result.seconds,
                                  rule=result.rule, history=dict(result.history), info=info,
                                  steps_timed=result.steps_timed))
    return out
