"""``aseqdip volume``'s warm-start defaults, each with the measurement that chose it, and the options that set them."""

from __future__ import annotations

import copy
from typing import Any

from ..errors import UserInputError
from ..options import RunOptions, VolumeOptions

VOLUME_TASKS = ("mri", "ct", "denoise")
# The warm-start defaults, chosen on a tuning pseudo-volume only (benchmarks/volume_tuning.py: pydicom's
# MR_small, zoomed and shifted per slice; denoising sigma 25, --stop auto with aSeqDIP's ramp; mean over 10
# slices; benchmarks/results/volume-warm/tuning-mr-small-pseudo.md). Cold: 27.26 dB, SSIM 0.809, 982 steps.
# * WARM_INPUT: a warm slice's z_0 is its neighbour's final estimate. With mix 1 and a quarter: 28.40 dB,
#   SSIM 0.848, 226 steps (every slice above its cold one); with its own z_0 (y) the best was 26.46 dB
#   (mix 0.75, a third), its warm slices stopping at the ceiling while still improving. MRI too, though its
#   own z_0 (A^H y) was tried: even on the pseudo-volume (26.56 against 26.51 dB, 161 against 154 steps),
#   better on a real tuning volume (nibabel's anatomical.nii: 26.17 against 26.04 dB, 0.54 of cold's steps
#   against 0.69; tuning-anatomical-mri.md), but worse on both reported MR volumes, each pair on one CPU
#   (emri_small 23.05 against 23.33 dB, 278 against 248 steps per later slice; example4d 27.07 against
#   27.23 dB, 230 against 243 steps): no gain that holds, so every task keeps the neighbour's estimate.
# * WARM_MIX: how much of the neighbour's weights a warm slice starts from, the rest its own random
#   initialisation (shrink and perturb, Ash & Adams, NeurIPS 2020). With the neighbour's input, 1.0 (28.40
#   dB) beat 0.75 (27.67) and 0.5 (26.15): the network and its input belong together. (With its own z_0,
#   0.5 had beaten 1.0 before the ramp landed: 26.59 against 26.18 dB, cold 27.12.)
# * WARM_FRACTION: the ceiling under a rule, a fraction of the steps the middle slice took. All of them: the
#   rule stops most warm slices well before. Denoising: 28.09 dB, 286 steps (a quarter, 28.40 dB, 226 steps;
#   the slices that ran longer stopped by the rule). MRI 4x, sigma 5 (the same pseudo-volume; cold 26.73 dB,
#   6606 steps, later slices 715 on average): 26.51 dB, later slices 154 steps (0.21 of cold's); a quarter
#   cut every warm slice off while still rising (23.46 dB), and a fixed 1000 steps reached 27.23 dB but
#   with 405 (0.57 of cold's). benchmarks/results/volume-warm/tuning-mr-small-pseudo.md, "MRI". On a real
#   tuning volume (nibabel's anatomical.nii, MRI 4x, sigma 5): all of the middle's steps +0.66 dB over cold
#   at 0.69 of its steps, a third -1.61 dB, a fifth -3.14 dB (tuning-anatomical-mri.md).
#   On CT (tuning pseudo-volume of CT_small, 5 slices, 2000-step budget) the discrepancy level is out of
#   reach of most cold slices, the middle one included, but warm slices reach it (544-904 steps): all of the
#   middle's steps gave +1.55 dB over cold at 0.36 of its steps; a fifth, as under a fixed budget, -0.34 dB
#   (tuning-ct-small-pseudo.md). So the fraction stays whether or not the middle slice's rule fired. (That
#   level is the sinogram MAD's floor, which auto keeps for warm slices only: a cold slice on CT without a
#   photon count is taken as noise-free and runs to its budget, aseqdip.auto.NOISE_FREE_PHYSICS.)
# * no ramp on warm slices (--warm-ramp keeps it): 24.29 against 25.20 dB at mix 0.5 and a quarter, 24.40
#   against 26.18 at mix 1 and a third (own z_0): at 3 x lr the fitted network fits the noise in a few steps.
#   MRI on anatomical.nii: -0.79 dB against the default, every warm slice at its ceiling (no fewer steps).
# * WARM_FRACTION_FIXED: under a fixed budget (--stop none) no rule stops a warm slice, so the ceiling is its
#   exact step count, and a volume of n slices costs 1 + (n - 1) x fraction cold slices. A fifth keeps a
#   10-slice volume under the 3 cold slices issue 19 allows (2.8; a quarter would be 3.25). It is not a
#   quality choice: warm slices start from a fitted network and z_0, and on emri_small's denoising a warm
#   slice's oracle best came within its first 50 steps (benchmarks/results/volume-warm/).
# * WARM_INPUT_DC: on the MRI pseudo-volume (4x, sigma 5) the neighbour's estimate with this slice's sampled
#   k-space put back gave 26.63 dB against 26.51, at 0.23 of cold's steps against 0.21: no speed, so off.
#   Carrying Adam's moments (--warm-optimizer) lost 1.47 dB there (tuning-mr-small-pseudo.md, "what a warm
#   slice starts from").
# * SHARED_NOISE: a volume's noise is a property of its acquisition (the receiver chain; a simulation's added
#   noise), the same in every slice, while one slice's estimate errs by a few per cent, and the discrepancy
#   rule's stopping step is sensitive to it. MRI 4x, sigma 5, 64 px: one slice's k-space-corner estimate
#   read 0.957-1.021 of the realised noise over example4d's 10 middle slices and 0.980-1.102 over
#   emri_small's 10 (the realised noise itself varies by under 1.5%); the slices read low were the ones
#   whose cold run went on past its oracle peak (example4d slices 7, 8, 14: 1480-1900 steps, peaks at
#   560-760). So every slice uses the median of up to SHARED_NOISE_SLICES slices' estimates. Measured
#   after the choice (benchmarks/results/volume-warm/*-shared-noise.md): MRI warm +0.09 and +0.61 dB, cold
#   +0.18 and +0.67 dB, fewer steps; denoising -0.04 (warm) and -0.16 dB (cold), its estimator reading
#   high on every slice (1.003-1.072). It follows from the estimator's accuracy, not from a tuned threshold. Not for CT:
#   post-log noise grows with a ray's attenuation, so it differs from slice to slice.
SHARED_NOISE = True
SHARED_NOISE_SLICES = 16
WARM_INPUT = True
WARM_INPUT_DC = False
WARM_MIX = 1.0
WARM_FRACTION = 1.0
WARM_FRACTION_FIXED = 0.2


def check_options(options: RunOptions, method: Any) -> None:
    """Refuse volume options that cannot apply (before anything is read or computed)."""
    from ..methods.base import DIPMethod

    v = volume_options(options)
    if v.warm_mix is not None and not 0.0 <= v.warm_mix <= 1.0:
        raise UserInputError(f"--warm-mix must lie in [0, 1], got {v.warm_mix:g}")
    if options.task not in VOLUME_TASKS:
        raise UserInputError(f"aseqdip volume is for the tasks where volumes exist ({', '.join(VOLUME_TASKS)}), "
                             f"not {options.task}")
    if not v.cold and not isinstance(method, DIPMethod):
        raise UserInputError(f"method {method.name} has no network to warm-start; add --cold")
    if v.warm_iterations is not None and v.warm_iterations < 1:
        raise UserInputError(f"--warm-iterations must be at least 1, got {v.warm_iterations}")
    if v.warm_fraction is not None and not 0.0 < v.warm_fraction <= 1.0:
        raise UserInputError(f"--warm-fraction must lie in (0, 1], got {v.warm_fraction:g}")
    if v.warm_fraction is not None and v.warm_iterations is not None:
        raise UserInputError("give --warm-iterations (steps) or --warm-fraction (of the middle slice's steps), not both")
    if v.cold and (v.warm_iterations is not None or v.warm_optimizer or v.warm_mix is not None
                   or v.warm_fraction is not None or v.warm_ramp or v.warm_input is not None
                   or v.warm_input_dc is not None):
        raise UserInputError("--cold reconstructs every slice from random weights: --warm-iterations, "
                             "--warm-fraction, --warm-optimizer, --warm-mix, --warm-ramp and --warm-input(-dc) do not apply")
    if options.task == "ct" and v.shared_noise:
        raise UserInputError("--shared-noise is not for CT: post-log noise grows with a ray's attenuation, so it "
                             "differs from slice to slice and each slice estimates its own")
    if v.warm_input_dc and v.warm_input is False:
        raise UserInputError("--warm-input-dc corrects the neighbour's estimate used as z_0: it needs --warm-input")


def volume_options(options: RunOptions) -> VolumeOptions:
    """``options.volume``, refused in one line when the options are not a volume's."""
    if options.volume is None:
        raise ValueError("a volume needs RunOptions(command='volume', volume=VolumeOptions(input=...))")
    return options.volume


def warm_mix(v: VolumeOptions) -> float:
    """``--warm-mix``, else :data:`WARM_MIX`."""
    return WARM_MIX if v.warm_mix is None else float(v.warm_mix)


def given_or(value: bool | None, default: bool) -> bool:
    """A ``--NAME`` / ``--no-NAME`` option as given, else ``default``."""
    return default if value is None else bool(value)


def warm_input(v: VolumeOptions) -> bool:
    """``--warm-input`` / ``--no-warm-input``, else :data:`WARM_INPUT`."""
    return given_or(v.warm_input, WARM_INPUT)


def warm_input_dc(v: VolumeOptions) -> bool:
    """``--warm-input-dc`` / ``--no-warm-input-dc``, else :data:`WARM_INPUT_DC`."""
    return given_or(v.warm_input_dc, WARM_INPUT_DC)


def warm_fraction(v: VolumeOptions, stop: str) -> float:
    """``--warm-fraction``, else :data:`WARM_FRACTION_FIXED` under a fixed budget and :data:`WARM_FRACTION` under a
    rule. ``stop`` is the rule the middle slice ran under (its plan's, with ``auto`` resolved, else ``--stop``)."""
    if v.warm_fraction is not None:
        return float(v.warm_fraction)
    return WARM_FRACTION_FIXED if stop == "none" else WARM_FRACTION


def warm_ceiling(v: VolumeOptions, middle: dict[str, Any], stop: str) -> int:
    """``--warm-iterations``, else :func:`warm_fraction` of the steps the middle slice took (under the rule it
    ran, else ``stop``: the rule asked for)."""
    if v.warm_iterations is not None:
        return v.warm_iterations
    return max(1, int(int(middle["steps"]) * warm_fraction(v, middle.get("stop") or stop) + 1e-9))


def warm_method(method: Any, iterations: int, ramp: int = 0) -> Any:
    """The method of a warm slice: its ceiling ``iterations``, no warm-up, and a ramp of ``ramp`` steps.

    Its network is fitted already, so by default no ramp: the slice's plan marks it warm
    (``MeasurementHints.warm_slice``) and ``auto`` adds none (:func:`aseqdip.auto.resolve`); ``--warm-ramp``
    passes the cold slice's ramp as it ran.
    """
    out = copy.copy(method)
    out.iterations = iterations
    if hasattr(out, "warmup"):
        out.warmup = 0
    if hasattr(out, "ramp"):
        out.ramp = ramp
    return out

