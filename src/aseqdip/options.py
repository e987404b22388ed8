"""What one run is asked to do, as plain Python values: the object ``aseqdip.pipeline`` and ``aseqdip.volume`` take.

The command line is one way to build it (``aseqdip.cli.run_options`` maps the flags); a Python user builds it
directly::

    from aseqdip.options import RunOptions, StopOptions
    from aseqdip.pipeline import execute

    metrics = execute(RunOptions(command="run", task="denoise", image="skimage:astronaut", size=64,
                                 out="astronaut-run", task_options={"sigma": 25.0},
                                 stopping=StopOptions(stop="auto")))

Every option left at None takes its owner's default: the task's (``aseqdip.tasks``), the method's or the
recipe's (``aseqdip.methods``, ``aseqdip.recipes``), the rule's (``aseqdip.outputrule``), a volume's
(``aseqdip.volume.defaults``). Options are grouped by owner, so that each is read in one place.

:meth:`RunOptions.record` flattens them into the one record a run's fingerprint is taken over: each option
under the name of the flag that sets it (``lr`` for ``--lr``), so a fingerprint reads as the command did.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

COMMANDS = ("run", "reconstruct", "volume")


@dataclass(frozen=True)
class StopOptions:
    """The output rule's options (docs/stopping.md); :func:`aseqdip.pipeline.output_rule` turns them into an
    :class:`~aseqdip.outputrule.OutputRule`. ``ema``, ``sure_sigma``, ``es_window`` and ``es_patience`` go to the
    method instead when it has a setting of that name (Self-Guided DIP's average, ES-DIP's window ...)."""

    stop: str = "auto"
    observe: tuple[str, ...] | None = None
    sigma_from: str | None = None
    sure_sigma: float | None = None  # on the 0-255 scale
    holdout: float | None = None
    refit: bool | None = None
    stop_every: int | None = None
    stop_patience: int | None = None
    tau: float | None = None
    confirm: float | None = None
    ema: float | None = None
    es_window: int | None = None
    es_patience: int | None = None


@dataclass(frozen=True)
class VolumeOptions:
    """``aseqdip volume``'s own options: the input, which slices, and how a slice starts from its neighbour
    (None: the measured defaults of :mod:`aseqdip.volume.defaults`)."""

    input: str
    cold: bool = False
    warm_iterations: int | None = None
    warm_fraction: float | None = None
    warm_ramp: bool = False
    warm_input: bool | None = None
    warm_input_dc: bool | None = None
    shared_noise: bool | None = None
    warm_optimizer: bool = False
    warm_mix: float | None = None
    slab: str | None = None  # "START:STOP"
    slices: int | None = None


@dataclass(frozen=True)
class RunOptions:
    """One ``run`` (simulate from a clean image), ``reconstruct`` (measured data) or ``volume``.

    ``task_options`` are the task's own (``sigma``, ``hiar``, ``acceleration``, ``kspace`` ...; the task takes
    those it knows, :meth:`aseqdip.tasks.base.Task.from_options`); ``method_options`` the options the methods
    declare (``aseqdip.methods.registry.Option``, by keyword-argument name), with values None where not given.
    ``extra_method_arguments`` reach the method's constructor as they are (a tensor input, in the benchmarks).
    """

    task: str
    out: str
    command: str = "run"
    image: str | None = None
    size: int | None = None
    overwrite: bool = False
    method: str = "aseqdip"
    iterations: int | None = None
    lr: float | None = None
    recipe: str | None = None
    network: str | None = None
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    track_every: int = 10
    progress: bool = True
    checkpoint_every: int | None = None
    resume: bool = False
    init: str | None = None
    save_weights: bool = False
    task_options: Mapping[str, Any] = field(default_factory=dict)
    method_options: Mapping[str, Any] = field(default_factory=dict)
    stopping: StopOptions = field(default_factory=StopOptions)
    volume: VolumeOptions | None = None
    extra_method_arguments: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.command not in COMMANDS:
            raise ValueError(f"RunOptions.command must be one of {', '.join(COMMANDS)}, got {self.command!r}")
        if (self.command == "volume") != (self.volume is not None):
            raise ValueError("RunOptions.volume is given exactly when RunOptions.command is 'volume'")

    def record(self, flag_names: Mapping[str, str] | None = None) -> dict[str, Any]:
        """Every option as one flat dict, keyed by the flag's name without dashes (``track_every``).

        ``flag_names`` maps a method option's keyword to its flag's name where they differ (ES-DIP's
        ``window`` is ``es_window``); :func:`aseqdip.methods.registry.flag_names` gives the registry's."""
        flag_names = flag_names or {}
        out: dict[str, Any] = {"command": self.command}
        for f in fields(self):
            if f.name in ("command", "task_options", "method_options", "stopping", "volume", "progress",
                          "extra_method_arguments"):
                continue
            out[f.name] = getattr(self, f.name)
        out["no_progress"] = not self.progress
        out.update({f.name: getattr(self.stopping, f.name) for f in fields(self.stopping)})
        out["observe"] = ",".join(self.stopping.observe) if self.stopping.observe else None
        if self.volume is not None:
            out.update({f.name: getattr(self.volume, f.name) for f in fields(self.volume)})
        for name, value in self.method_options.items():
            out.setdefault(flag_names.get(name, name), value)
        for name, value in self.task_options.items():
            out.setdefault(name, value)
        if self.extra_method_arguments:
            out["method_extra"] = dict(self.extra_method_arguments)
        return out
