"""A task turns a clean image into a measurement problem (physics, y) and knows its paper defaults.

Each task module defines a :class:`Task` subclass and registers it in ``tasks/__init__.py``; the CLI,
the benchmark and the tests all go through the registry, so a new task is one module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from ..errors import UserInputError
from ..metrics import psnr, ssim
from ..physics.defaults import first_estimate
from ..physics.hints import MeasurementHints

if TYPE_CHECKING:  # the tasks declare their flags; only the command line parses them
    import argparse


def clip01(x: torch.Tensor) -> torch.Tensor:
    return x.clamp(0.0, 1.0)


@dataclass
class Problem:
    """One reconstruction problem.

    ``x_true`` is the ground truth when known (simulated problems), used only for metrics and curves.
    ``x0`` is the task's simple reconstruction (the noisy image, zero-filled A^H y, FBP): the baseline
    every method must beat, and aSeqDIP's z_0. ``to_image`` maps any estimate to the [0, 1] image that
    metrics and PNGs use (a clip for natural images, a normalised magnitude for MRI).

    ``hints`` is what the task knows of the acquisition that a noise estimator or ``auto`` may use (a CT
    photon count; measured MRI's own noise level from its noise scan or k-space background); ``settings``
    is the task's record for metrics.json.
    ``extra_outputs`` maps a file name to a function writing that file (diagnostic figures of the data).
    """

    task: str
    physics: Any
    y: torch.Tensor
    x0: torch.Tensor
    x_true: torch.Tensor | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    to_image: Callable[[torch.Tensor], torch.Tensor] = clip01
    measurement_label: str = "measurement"
    hints: MeasurementHints = field(default_factory=MeasurementHints)
    extra_outputs: dict[str, Callable[[Path], None]] = field(default_factory=dict)

    def psnr(self, x: torch.Tensor) -> torch.Tensor:
        """PSNR of ``x`` against the ground truth, on the task's display images (torch, no sync)."""
        if self.x_true is None:
            raise ValueError("no ground truth for this problem")
        return psnr(self.to_image(x.to(self.x_true.device)), self.to_image(self.x_true))

    def metrics(self, x: torch.Tensor) -> dict[str, float]:
        if self.x_true is None:
            return {}
        a = self.to_image(x.detach().cpu())
        b = self.to_image(self.x_true.cpu())
        return {"psnr": float(psnr(a, b)), "ssim": ssim(a, b)}


class Task:
    """Base class: override ``add_arguments``, ``from_options`` and ``simulate``."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    network: ClassVar[str] = "shallow_unet"  # the paper's network for this task
    grayscale: ClassVar[bool | None] = None  # convert input images to grey (True) / colour (False)
    method_defaults: ClassVar[dict[str, dict[str, Any]]] = {}  # per-method overrides of defaults

    @classmethod
    def add_arguments(cls, group: argparse._ArgumentGroup) -> None:
        """Add this task's CLI options (with default None: the task's own defaults apply)."""

    @classmethod
    def from_options(cls, **options: Any) -> Task:
        """The task with the options given by keyword (None: the task's default). Every task's options may be
        passed (a command line holds them all): a task takes those it knows and ignores the others."""
        raise NotImplementedError

    @classmethod
    def add_reconstruct_arguments(cls, group: argparse._ArgumentGroup) -> None:
        """Options of ``aseqdip reconstruct`` for measured data (e.g. --kspace, --sinogram); default None."""

    @classmethod
    def from_measurement(cls, **options: Any) -> Problem:
        """A problem from measured data named by keyword (``kspace=``, ``sinogram=`` ...; ``seed`` draws what
        is drawn), with no ground truth unless the file holds a reference; other options are ignored."""
        raise UserInputError(f"task {cls.name} cannot reconstruct from measured data; use 'aseqdip run'")

    def load(self, spec: str, size: int | None = None) -> torch.Tensor:
        """Read the clean image for this task (override for DICOM and other formats)."""
        from ..io.images import load_image

        return load_image(spec, size=size, grayscale=self.grayscale)

    def simulate(self, x: torch.Tensor, seed: int = 0) -> Problem:
        raise NotImplementedError

    def settings(self) -> dict[str, Any]:
        return {}

    @staticmethod
    def check(condition: bool, message: str) -> None:
        if not condition:
            raise UserInputError(message)

    def make_problem(self, physics: Any, y: torch.Tensor, x: torch.Tensor | None, **kwargs: Any) -> Problem:
        with torch.no_grad():
            x0 = first_estimate(physics, y)
        return Problem(task=self.name, physics=physics, y=y, x0=x0, x_true=x, settings=self.settings(), **kwargs)
