"""Tasks: a clean image to (physics, y) with the paper's defaults. Register new tasks in TASKS."""

from .base import Problem, Task
from .ct import CT
from .deblur import Deblur
from .denoise import Denoise
from .inpaint import Inpaint
from .mri import MRI

TASKS: dict[str, type[Task]] = {Denoise.name: Denoise, Inpaint.name: Inpaint}
TASKS[Deblur.name] = Deblur
TASKS[MRI.name] = MRI
TASKS[CT.name] = CT

__all__ = ["CT", "TASKS", "Deblur", "Denoise", "Inpaint", "Problem", "Task"]
