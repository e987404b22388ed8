"""Tasks: a clean image to (physics, y) with the paper's defaults. Register new tasks in TASKS."""

from .base import Problem, Task
from .denoise import Denoise
from .inpaint import Inpaint

TASKS: dict[str, type[Task]] = {Denoise.name: Denoise, Inpaint.name: Inpaint}

__all__ = ["TASKS", "Denoise", "Inpaint", "Problem", "Task"]
