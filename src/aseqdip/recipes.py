"""aSeqDIP's recipes: the paper's Algorithm 1 as written, or as its authors' public scripts run it, per task.

The paper (NeurIPS 2024) gives one recipe for every task: z_0 the first estimate (y, A^H y, FBP), N = 2
Adam steps per input update at lr 1e-4, K = 2000 updates, squared norms, lambda = 1. The authors' public
scripts (github.com/sjames40/Aseq_DIP, one per task) run something else on exactly the tasks where this
library found aSeqDIP behind Vanilla DIP; each difference is an option of :class:`aseqdip.methods.ASeqDIP`,
and this module names their per-task sets, so a user can ask for either in one word (``--recipe``).
docs/fidelity.md lists every difference, where it comes from, and what the ablation study measured.

``library`` is this library's own choice for a task where the study measured one better than both.
``paper`` is the default except where the ablation study (``benchmarks/recipe_study.py``) found, for a
task, a recipe that returns a better image without the ground truth (:data:`TASK_DEFAULTS`);
``--recipe paper`` keeps the published algorithm one flag away. The user's own options win over a recipe's.
"""

from __future__ import annotations

from typing import Any

RECIPES: tuple[str, ...] = ("paper", "authors", "library")
DEFAULT_RECIPE = "paper"
# per task, the recipe a run gets without --recipe, where the study found one better than the paper's
# (docs/fidelity.md, "What is adopted"); every other task runs the paper's
TASK_DEFAULTS: dict[str, str] = {
    # inpainting, box holes and random pixel masks (docs/fidelity.md, benchmarks/results/recipe-study; 3 study images
    # a line, under auto): the library's recipe 19.54 / 25.74 dB at HIAR 0.25 / 0.1 and 28.07 with half the pixels
    # missing (64 px), against the paper's recipe's 15.06 / 17.67 / 24.00, the authors' 16.01 / 19.03 / 27.05 and
    # Vanilla DIP's 16.80 / 22.00 / 26.25; at 128 px 18.86 / 26.03 / 29.93 against Vanilla DIP's 15.83 / 20.88 / 28.61
    "inpaint": "library",
    # MRI: the trial (TRIALS): the authors' data-consistent recipe kept unless its rule finds a noise level, else the
    # paper's (docs/fidelity.md, "MRI: a trial of the authors' recipe"): with k-space noise (4x, sigma 5, 3 slices)
    # the paper's recipe's own image bit for bit after a trial of 92-132 steps; noise-free (4x, 3 slices) the
    # authors' recipe to its 6000-step budget (27.39 dB on mean under auto, against 22.22 for the paper's recipe)
    "mri": "library",
}

# What each task's script does differently from the paper's text (read from the scripts' files):
AUTHORS: dict[str, dict[str, Any]] = {
    # Aseq_DIP_inpainting.py: hole filled with 0.4 in z_0 (and in y, where the masked data term never sees it),
    # Adam at 3e-4, K = 200 updates of N = 2 (400 steps), the saved image composited from y and the network
    "inpaint": {"hole_fill": 0.4, "lr": 3e-4, "iterations": 400, "consistent_output": True},
    # Aseq_DIP_MRI.py: data-consistent input update, unsquared norms, the autoencoding term on a line of its own
    # (never added: lambda 0 in effect), k-space scaled to the network's first output, 6000 steps
    "mri": {"dc_update": True, "loss_form": "norm", "lam": 0.0, "match_scale": True, "iterations": 6000},
    # Aseq_DIP_Sparse_view_CT.py: random z_0, N = 20 with gradients adding up over the block, lr 2e-4,
    # unsquared norms, the sinogram scaled to the network's first output (and 2000 x 20 = 40000 steps,
    # not taken here: the budget stays the paper's 4000)
    "ct": {"z0": "random", "inner_steps": 20, "accumulate": True, "lr": 2e-4, "loss_form": "norm",
           "match_scale": True},
    # Aseq_DIP_Deblurring.py: lambda 5 and K = 5000 (10000 steps), on a linear motion blur rather than the
    # paper's non-linear BKSE blur (the operator is the task's, not the recipe's)
    "deblur": {"lam": 5.0, "iterations": 10000},
    # Aseq_DIP_denoising.py runs the paper's recipe (its input update takes the last inner step's output,
    # one Adam step behind f(z) after the block: not an option here)
    "denoise": {},
}


# This library's own choice per task where the ablation found one better than both (docs/fidelity.md); the
# paper's recipe elsewhere.
LIBRARY: dict[str, dict[str, Any]] = {
    # inpainting: z_0's hole filled by the classical biharmonic inpainting, 200 steps fitting f(z_0) to z_0 before
    # the first input update (so that it does not replace the fill by an untrained network's output), and one
    # input update (K = 1: 202 steps). Later updates move the hole away from the fill: along the 18 longer runs
    # of this recipe under auto the image was best at z_0 or z_1 in 16; stopped at z_1 it returns 0.7-3.4 dB more
    # on a line's mean than where auto stopped it, in 202 steps against 779-3737
    # (docs/fidelity.md, "Inpainting: stop at the first input update")
    "inpaint": {"hole_fill": "biharmonic", "warmup": 200, "iterations": 202},
}


# Where the library's recipe is a trial: (first, then). Under ``auto`` the first recipe runs with its discrepancy
# principle confirming the noise level (aseqdip.engine.stopping.Discrepancy, ``confirm``); only where the residual
# reaches the estimated level and stays near it (a noise level) does the run start again with the second; where
# the data prove noise-free, or the residual never comes down to the level, the first is kept. MRI: the authors' data-consistent
# recipe is far ahead on noise-free k-space and behind with k-space noise, and the k-space corner estimate cannot
# tell the two apart before a run (docs/fidelity.md, "MRI: a trial of the authors' recipe").
TRIALS: dict[str, tuple[str, str]] = {"mri": ("authors", "paper")}


def trial(recipe: str, task: str | None, method: str) -> tuple[str, str] | None:
    """(first, then) when ``recipe`` on ``task`` is a trial for ``method`` (only aSeqDIP has recipes), else None."""
    return TRIALS.get(task or "") if recipe == "library" and method == "aseqdip" else None


def recipe_settings(recipe: str, task: str | None, method: str) -> dict[str, Any]:
    """The method keyword arguments ``recipe`` sets for ``method`` on ``task`` (only aSeqDIP has recipes)."""
    if recipe not in RECIPES:
        raise ValueError(f"recipe must be one of {', '.join(RECIPES)}, got {recipe!r}")
    if recipe == "paper" or method != "aseqdip" or task is None:
        return {}
    if recipe == "library" and task in TRIALS:  # outside a trial (a fixed budget, a warm start): the second recipe
        return recipe_settings(TRIALS[task][1], task, method)
    return dict((AUTHORS if recipe == "authors" else LIBRARY).get(task, {}))


def default_recipe(task: str | None) -> str:
    """The recipe of a run on ``task`` that names none."""
    return TASK_DEFAULTS.get(task or "", DEFAULT_RECIPE)
