"""``aseqdip volume``: a 3-D study in one command, each slice warm-started from its neighbour.

Neighbouring slices are nearly the same image, so the network fitted to one, and its estimate, are a
far better start for the next than random weights and the slice's own first estimate. The middle slice
(of the volume, or of ``--slab``) is reconstructed cold, with the full budget and rule (under ``--stop
auto``, aSeqDIP's ramp too); then the walk goes outwards, alternately up and down, and each slice starts
from its neighbour's final weights (:class:`aseqdip.engine.warm.WarmStart`; Adam's moments too with
``--warm-optimizer``; shrunk towards its own random initialisation with ``--warm-mix`` < 1) and from its
neighbour's final estimate as its input z_0 (``--no-warm-input``: its own first estimate, y or A^H y;
``--warm-input-dc``: with the slice's own sampled k-space put back, for MRI),
with its own stopping rule and a smaller ceiling: ``--warm-iterations``, by default a fraction of the steps
the middle slice took (``--warm-fraction``): all of what the rule needed under a stopping rule (no warm
slice runs longer than the cold one did; :data:`WARM_FRACTION`), a fifth of ``--iterations`` under the
paper's fixed budget (:data:`WARM_FRACTION_FIXED`). A warm slice skips aSeqDIP's
warm-up and ramp (``--warm-ramp`` keeps the ramp): they exist to climb out of a random network.
``--cold`` reconstructs every slice independently (same order, full budget). The defaults were chosen on
a tuning pseudo-volume (see :data:`WARM_MIX`); the figures are in
benchmarks/results/volume-warm/tuning-mr-small-pseudo.md.

Each slice is one ``aseqdip run`` (image volumes: the task simulates its measurement with seed
``--seed`` + the slice's index in the input) or ``aseqdip reconstruct`` (measured k-space: that slice
of the file), through the same pipeline functions: task, method, output rule, checks, fingerprint.

Finished slices (their image, record and, while a later slice needs them, their network weights) are
kept in a work folder beside ``--out`` (``.OUT.volume``); a killed volume continues with ``--resume`` at
the slice it was on, if its fingerprint matches. The results appear as a whole folder
(:class:`~aseqdip.io.outputs.StagedOutput`); then the work folder is removed.
"""

from .defaults import (
                       SHARED_NOISE,
                       SHARED_NOISE_SLICES,
                       VOLUME_TASKS,
                       WARM_FRACTION,
                       WARM_FRACTION_FIXED,
                       WARM_INPUT,
                       WARM_INPUT_DC,
                       WARM_MIX,
                       check_options,
                       warm_ceiling,
                       warm_fraction,
                       warm_method,
)
from .run import run_volume, solve_slice, task_and_method
from .slices import Slices, prepare, shared_noise, slice_range, walk
from .work import WorkFolder, open_work, work_folder

__all__ = ["SHARED_NOISE", "SHARED_NOISE_SLICES", "VOLUME_TASKS", "WARM_FRACTION", "WARM_FRACTION_FIXED", "WARM_INPUT",
           "WARM_INPUT_DC", "WARM_MIX", "Slices", "WorkFolder", "check_options", "open_work", "prepare", "run_volume",
           "shared_noise", "slice_range", "solve_slice", "task_and_method", "walk", "warm_ceiling", "warm_fraction",
           "warm_method", "work_folder"]
