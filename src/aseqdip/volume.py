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

from __future__ import annotations

import argparse
import copy
import json
import platform
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import __version__, pipeline
from .engine.checkpoint import check_match
from .engine.state import Reconstruction
from .engine.warm import Weights, WarmStart
from .errors import Interrupted, NonFiniteError, UserInputError
from .io.outputs import atomic_write, write_json
from .io.volumes import Volume, read_volume, resampled_affine, slab_affine

VOLUME_TASKS = ("mri", "ct", "denoise")
# The warm-start defaults, chosen on a tuning pseudo-volume only (benchmarks/volume_tuning.py: pydicom's
# MR_small, zoomed and shifted per slice; denoising sigma 25, --stop auto with aSeqDIP's ramp; mean over 10
# slices; benchmarks/results/volume-warm/tuning-mr-small-pseudo.md). Cold: 27.26 dB, SSIM 0.809, 982 steps.
# * WARM_INPUT: a warm slice's z_0 is its neighbour's final estimate. With mix 1 and a quarter: 28.40 dB,
#   SSIM 0.848, 226 steps (every slice above its cold one); with its own z_0 (y) the best was 26.46 dB
#   (mix 0.75, a third), its warm slices stopping at the ceiling while still improving.
# * WARM_MIX: how much of the neighbour's weights a warm slice starts from, the rest its own random
#   initialisation (shrink and perturb, Ash & Adams, NeurIPS 2020). With the neighbour's input, 1.0 (28.40
#   dB) beat 0.75 (27.67) and 0.5 (26.15): the network and its input belong together. (With its own z_0,
#   0.5 had beaten 1.0 before the ramp landed: 26.59 against 26.18 dB, cold 27.12.)
# * WARM_FRACTION: the ceiling under a rule, a fraction of the steps the middle slice took. All of them: the
#   rule stops most warm slices well before. Denoising: 28.09 dB, 286 steps (a quarter, 28.40 dB, 226 steps;
#   the slices that ran longer stopped by the rule). MRI 4x, sigma 5 (the same pseudo-volume; cold 26.73 dB,
#   6606 steps, later slices 715 on average): 26.51 dB, later slices 154 steps (0.21 of cold's); a quarter
#   cut every warm slice off while still rising (23.46 dB), and a fixed 1000 steps reached 27.23 dB but
#   with 405 (0.57 of cold's). benchmarks/results/volume-warm/tuning-mr-small-pseudo.md, "MRI".
#   On CT (tuning pseudo-volume of CT_small, 5 slices, 2000-step budget) the discrepancy level is out of
#   reach of most cold slices, the middle one included, but warm slices reach it (544-904 steps): all of the
#   middle's steps gave +1.55 dB over cold at 0.36 of its steps; a fifth, as under a fixed budget, -0.34 dB
#   (tuning-ct-small-pseudo.md). So the fraction stays whether or not the middle slice's rule fired.
# * no ramp on warm slices (--warm-ramp keeps it): 24.29 against 25.20 dB at mix 0.5 and a quarter, 24.40
#   against 26.18 at mix 1 and a third (own z_0): at 3 x lr the fitted network fits the noise in a few steps.
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
WORK_FORMAT = 1


def work_folder(out: str | Path) -> Path:
    """Where a volume writing into ``out`` keeps its finished slices: a hidden folder beside it."""
    out = Path(out)
    return out.parent / f".{out.name}.volume"


# ---- which slices, in which order -----------------------------------------------------------------
def slice_range(args: argparse.Namespace, n_slices: int) -> tuple[int, int]:
    """[start, stop) of the slices to reconstruct: ``--slab START:STOP``, ``--slices N`` around the middle, or all."""
    slab, count = getattr(args, "slab", None), getattr(args, "slices", None)
    if slab is not None and count is not None:
        raise UserInputError("give --slab or --slices, not both")
    if count is not None:
        if not 1 <= count <= n_slices:
            raise UserInputError(f"--slices {count}: the volume has {n_slices} slices (give 1 to {n_slices})")
        start = (n_slices - count) // 2
        return start, start + count
    if slab is None:
        return 0, n_slices
    try:
        start_text, stop_text = slab.split(":")
        start, stop = int(start_text), int(stop_text)
    except ValueError:
        raise UserInputError(f"--slab {slab}: expected START:STOP, two slice indices (e.g. 0:40)") from None
    if not 0 <= start < stop <= n_slices:
        raise UserInputError(f"--slab {slab}: needs 0 <= START < STOP <= {n_slices} (the volume's slice count)")
    return start, stop


def walk(start: int, stop: int, cold: bool = False) -> list[tuple[int, int | None]]:
    """(slice, neighbour it warm-starts from) from the middle outwards, alternately up and down.

    The middle slice, and every slice when ``cold``, has no neighbour (None).
    """
    middle = (start + stop - 1) // 2
    order: list[tuple[int, int | None]] = [(middle, None)]
    up, down = middle + 1, middle - 1
    while up < stop or down >= start:
        if up < stop:
            order.append((up, None if cold else up - 1))
            up += 1
        if down >= start:
            order.append((down, None if cold else down + 1))
            down -= 1
    return order


# ---- the slices as problems ------------------------------------------------------------------------
@dataclass
class Slices:
    """The volume's slices as the task's problems, and their results back in the source's units.

    Image volumes are mapped to [0, 1] once for the whole volume (CT: the HU window; MRI: divided by the
    volume's maximum magnitude; otherwise its min..max), so every slice has the same scale, and mapped
    back with ``low + x (high - low)``, x clipped to [0, 1] as the task scores it (CT: HU inside the window;
    MRI magnitudes are not clipped). Measured k-space slices come back as |x| times the slice's k-space
    scale (the units of A^H y).
    """

    args: argparse.Namespace
    task: Any
    volume: Volume
    unit: np.ndarray | None  # (S, H, W) in [0, 1], resized; None for k-space
    low: float
    high: float

    def problem(self, k: int) -> Any:
        """The problem of slice ``k`` of the input."""
        if self.unit is None:
            ns = argparse.Namespace(**{**vars(self.args), "kspace": self.volume.source, "slice": k,
                                       "maps": None, "command": "reconstruct"})
            return type(self.task).from_measurement(ns)
        x = torch.from_numpy(np.ascontiguousarray(self.unit[k]))[None, None]
        if self.args.task == "ct":
            from .tasks.ct import pad_to_square

            x = pad_to_square(x)
        return self.task.simulate(x, seed=self.args.seed + k)

    def values(self, image: torch.Tensor, problem: Any) -> np.ndarray:
        """The returned image as (H, W) in the source's units (magnitude for MRI)."""
        x = image.detach().cpu().float()[0]
        plane = x.square().sum(0).sqrt() if self.args.task == "mri" else x[0]
        if self.unit is None:
            return (plane * float(problem.settings["kspace_scale"])).numpy()
        h, w = self.unit.shape[1:]
        top, left = (plane.shape[0] - h) // 2, (plane.shape[1] - w) // 2  # CT's square padding, cropped off
        plane = plane[top:top + h, left:left + w]
        if self.args.task != "mri":  # what the task scores and shows: its [0, 1] image (HU inside the window)
            plane = plane.clamp(0.0, 1.0)
        return (self.low + plane * (self.high - self.low)).numpy().astype(np.float32)

    def display(self, values: np.ndarray) -> np.ndarray:
        """Values mapped to [0, 1] as the volume's scale does (k-space: by the largest value)."""
        if self.unit is None:
            peak = float(values.max())
            return np.clip(values / (peak if peak > 0 else 1.0), 0, 1)
        return np.clip((values - self.low) / (self.high - self.low), 0, 1)


def prepare(args: argparse.Namespace, task: Any, volume: Volume) -> tuple[Slices, np.ndarray]:
    """The input's slices as problems (scaled over the whole input, resized) and their affine.

    The scale comes from the whole input, not the slab, so a slice's problem is the same in every slab.
    """
    from .io.dicom import CT_WINDOW, hu_window
    from .io.images import center_square, resize
    from .messages import warn

    affine = volume.affine
    if volume.data is None:
        if args.task != "mri":
            raise UserInputError(f"{volume.source}: measured k-space is for --task mri, not {args.task}")
        if args.size is not None:
            raise UserInputError("--size does not apply to measured k-space (each slice is reconstructed as measured)")
        return Slices(args, task, volume, None, 0.0, 1.0), affine
    data = volume.data
    if volume.modality.upper() == "CT":
        low, high = task.window if args.task == "ct" else CT_WINDOW
        unit = hu_window(data, low, high)
    else:
        if args.task == "ct":
            warn(f"{volume.source}: modality {volume.modality or 'unknown'} is not CT, so its values are not "
                 f"Hounsfield units; scaling its min..max to [0, 1] instead of the HU window")
        low = 0.0 if args.task == "mri" or float(data.min()) >= 0 else float(data.min())
        high = float(data.max())
        if not high > low:
            raise UserInputError(f"{volume.source}: every voxel has the same value; nothing to reconstruct")
        unit = (np.clip(data, low, None) - low) / (high - low)
    if args.size is not None:
        t = torch.from_numpy(np.ascontiguousarray(unit, dtype=np.float32))[None]
        side = center_square(t).shape[-1]
        top, left = (t.shape[-2] - side) // 2, (t.shape[-1] - side) // 2
        unit = resize(t, args.size)[0].numpy()
        affine = resampled_affine(affine, top, left, side / args.size)
    if args.task == "ct":
        task.pixel_mm = float(np.linalg.norm(affine[:3, 0])) if volume.is_dicom or volume.kind == "nifti" else None
    return Slices(args, task, volume, np.ascontiguousarray(unit, dtype=np.float32), low, high), affine


# ---- the volume's noise level -----------------------------------------------------------------------
def shared_noise(args: argparse.Namespace, slices: Slices, n_slices: int) -> dict[str, Any] | None:
    """One noise level for every slice: the median of the estimates of up to :data:`SHARED_NOISE_SLICES`
    slices spread over the whole input (not the slab, so every slab of a volume uses the same level).

    None when the rule needs no noise level, the user gives it (``--sure-sigma``), ``--no-shared-noise``,
    the task is CT (see :data:`SHARED_NOISE`) or the file carries its own level (a raw scan's noise scan).
    Returns the hint entry :func:`aseqdip.physics.noise_level.noise_level` reads, with the slices' estimates.
    """
    import dataclasses

    from .physics.noise_level import noise_level
    from .rules import needs_noise

    rule = dataclasses.replace(pipeline.output_rule(args), stop=pipeline.effective_stop(args))
    if (not _switch(args, "shared_noise", SHARED_NOISE) or args.task == "ct" or not needs_noise(rule)
            or getattr(args, "sure_sigma", None) is not None):
        return None
    picked = sorted({int(round(k)) for k in np.linspace(0, n_slices - 1, min(n_slices, SHARED_NOISE_SLICES))})
    estimates: dict[int, float] = {}
    how = ""
    for k in picked:
        problem = slices.problem(k)
        try:
            level = noise_level(problem.physics, problem.y, prefer="estimate", hint=problem.settings)
        except ValueError:  # this slice has too little to estimate from; the others decide
            continue
        if level.source != "estimate":  # the file's own noise level is better than any estimate
            return None
        estimates[k], how = level.sigma, level.how
    if not estimates:
        return None
    sigma = float(np.median(list(estimates.values())))
    return {"sigma": sigma, "how": f"median over {len(estimates)} slices of the volume of: {how}",
            "slices": {str(k): round(v, 8) for k, v in estimates.items()}}


# ---- one slice -------------------------------------------------------------------------------------
def solve_slice(args: argparse.Namespace, method: Any, problem: Any, warm: WarmStart) -> Reconstruction:
    """Reconstruct one slice through the pipeline, with ``warm`` loading (and keeping) network weights."""
    return pipeline.solve(args, method, problem, callbacks=[warm])


def warm_method(method: Any, iterations: int, ramp: bool = False) -> Any:
    """The method of a warm slice: its ceiling ``iterations``, no warm-up, and no ramp unless ``ramp``.

    Its network is fitted already; ``schedule_fixed`` tells ``--stop auto`` (:func:`aseqdip.auto.apply_to`)
    not to put its ramp back on. With ``ramp`` the slice keeps the method's ramp (auto's 100 steps at 3 x lr).
    """
    out = copy.copy(method)
    out.iterations = iterations
    if hasattr(out, "warmup"):
        out.warmup = 0
    if hasattr(out, "ramp") and not ramp:
        out.ramp = 0
    out.schedule_fixed = True
    return out


def slice_record(k: int, order: int, neighbour: int | None, result: Reconstruction, problem: Any,
                 wall: float) -> dict[str, Any]:
    """What slices.csv and volume.json say about one slice."""
    from .report import oracle_best

    record: dict[str, Any] = {"index": k, "order": order, "start": "cold" if neighbour is None else "warm",
                              "warm_from": neighbour, "steps": result.iterations,
                              "iteration_returned": result.iteration_returned, "seconds": round(result.seconds, 3),
                              "wall_seconds": round(wall, 3), "rule": result.rule,
                              "stop_reason": result.info.get("stop_reason", "") or "budget"}
    noise = result.info.get("noise")
    if noise:  # the level the slice's rule compared its residual with, and where it came from
        record.update(noise_sigma=noise["sigma"], noise_source=noise["source"])
    if problem.x_true is not None:
        scores = problem.metrics(result.image)
        record.update(psnr=round(scores["psnr"], 4), ssim=round(scores["ssim"], 5),
                      psnr_measurement=round(problem.metrics(problem.x0)["psnr"], 4))
        best = oracle_best(result.history)
        if best is not None:
            record.update(psnr_oracle_best=round(best[0], 4), iteration_oracle_best=best[1])
    return record


# ---- the work folder: finished slices and the weights still needed --------------------------------
class WorkFolder:
    """Finished slices on disk (``slice_K.npy`` + ``slice_K.json``, the JSON last) and weights still needed."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def finished(self) -> dict[int, dict[str, Any]]:
        out = {}
        for record in sorted(self.path.glob("slice_*.json")):
            data = json.loads(record.read_text())
            out[int(data["index"])] = data
        return out

    def values(self, k: int) -> np.ndarray:
        return np.load(self.path / f"slice_{k:04d}.npy", allow_pickle=False)

    def save(self, k: int, values: np.ndarray, record: dict[str, Any], weights: Weights | None) -> None:
        if weights is not None:
            self.save_weights(k, weights)
        atomic_write(self.path / f"slice_{k:04d}.npy", lambda f: np.save(f, values, allow_pickle=False))
        write_json(self.path / f"slice_{k:04d}.json", record)

    def save_weights(self, k: int, weights: Weights) -> None:
        import io

        buf = io.BytesIO()
        torch.save(weights.to_file(), buf)
        atomic_write(self.path / f"weights_{k:04d}.pt", lambda f: f.write(buf.getvalue()))

    def weights(self, k: int) -> Weights:
        path = self.path / f"weights_{k:04d}.pt"
        if not path.exists():
            raise UserInputError(f"{self.path}: the network weights of slice {k}, needed to warm-start its neighbour, "
                                 f"are missing; remove the folder to start the volume afresh")
        return Weights.from_file(torch.load(path, map_location="cpu", weights_only=True))

    def drop_weights(self, k: int) -> None:
        (self.path / f"weights_{k:04d}.pt").unlink(missing_ok=True)


def open_work(args: argparse.Namespace, fingerprint: dict[str, Any]) -> WorkFolder:
    """The volume's work folder: continued with ``--resume`` when its fingerprint matches, else new.

    Without ``--resume`` a work folder holding finished slices is refused (one line): its slices are kept.
    """
    work = WorkFolder(work_folder(args.out))
    state = work.path / "state.json"
    if work.path.exists() and state.exists():
        try:
            payload = json.loads(state.read_text())
        except (OSError, ValueError):
            raise UserInputError(f"{state}: unreadable; remove {work.path} to start the volume afresh") from None
        done = len(list(work.path.glob("slice_*.json")))
        if getattr(args, "resume", False):
            check_match(work.path, payload, "fingerprint", fingerprint)
            return work
        if done:
            raise UserInputError(f"{work.path} holds {done} finished slices of an interrupted volume: add --resume to "
                                 f"continue it, or remove that folder to start afresh")
    shutil.rmtree(work.path, ignore_errors=True)
    work.path.mkdir(parents=True)
    write_json(state, {"format": WORK_FORMAT, "fingerprint": fingerprint})
    return work


# ---- the command ------------------------------------------------------------------------------------
def check_options(args: argparse.Namespace, method: Any) -> None:
    """Refuse volume options that cannot apply (before anything is read or computed)."""
    from .methods.base import DIPMethod

    if args.warm_mix is not None and not 0.0 <= args.warm_mix <= 1.0:
        raise UserInputError(f"--warm-mix must lie in [0, 1], got {args.warm_mix:g}")
    if args.task not in VOLUME_TASKS:
        raise UserInputError(f"aseqdip volume is for the tasks where volumes exist ({', '.join(VOLUME_TASKS)}), "
                             f"not {args.task}")
    if not args.cold and not isinstance(method, DIPMethod):
        raise UserInputError(f"method {method.name} has no network to warm-start; add --cold")
    if args.warm_iterations is not None and args.warm_iterations < 1:
        raise UserInputError(f"--warm-iterations must be at least 1, got {args.warm_iterations}")
    fraction = getattr(args, "warm_fraction", None)
    if fraction is not None and not 0.0 < fraction <= 1.0:
        raise UserInputError(f"--warm-fraction must lie in (0, 1], got {fraction:g}")
    if fraction is not None and args.warm_iterations is not None:
        raise UserInputError("give --warm-iterations (steps) or --warm-fraction (of the middle slice's steps), not both")
    if args.cold and (args.warm_iterations is not None or args.warm_optimizer or args.warm_mix is not None
                      or fraction is not None or getattr(args, "warm_ramp", False)
                      or getattr(args, "warm_input", None) is not None
                      or getattr(args, "warm_input_dc", None) is not None):
        raise UserInputError("--cold reconstructs every slice from random weights: --warm-iterations, "
                             "--warm-fraction, --warm-optimizer, --warm-mix, --warm-ramp and --warm-input(-dc) do not apply")
    if args.task == "ct" and getattr(args, "shared_noise", None):
        raise UserInputError("--shared-noise is not for CT: post-log noise grows with a ray's attenuation, so it "
                             "differs from slice to slice and each slice estimates its own")
    if getattr(args, "warm_input_dc", None) and getattr(args, "warm_input", None) is False:
        raise UserInputError("--warm-input-dc corrects the neighbour's estimate used as z_0: it needs --warm-input")


def warm_mix(args: argparse.Namespace) -> float:
    """``--warm-mix``, else :data:`WARM_MIX`."""
    return WARM_MIX if args.warm_mix is None else float(args.warm_mix)


def _switch(args: argparse.Namespace, name: str, default: bool) -> bool:
    """A ``--NAME`` / ``--no-NAME`` option as given, else ``default``."""
    given = getattr(args, name, None)
    return default if given is None else bool(given)


def warm_input(args: argparse.Namespace) -> bool:
    """``--warm-input`` / ``--no-warm-input``, else :data:`WARM_INPUT`."""
    return _switch(args, "warm_input", WARM_INPUT)


def warm_input_dc(args: argparse.Namespace) -> bool:
    """``--warm-input-dc`` / ``--no-warm-input-dc``, else :data:`WARM_INPUT_DC`."""
    return _switch(args, "warm_input_dc", WARM_INPUT_DC)


def warm_fraction(args: argparse.Namespace) -> float:
    """``--warm-fraction``, else :data:`WARM_FRACTION_FIXED` under a fixed budget and :data:`WARM_FRACTION` under a rule."""
    from .pipeline import effective_stop

    fraction = getattr(args, "warm_fraction", None)
    if fraction is not None:
        return float(fraction)
    return WARM_FRACTION_FIXED if effective_stop(args) == "none" else WARM_FRACTION


def warm_ceiling(args: argparse.Namespace, middle: dict[str, Any]) -> int:
    """``--warm-iterations``, else :func:`warm_fraction` of the steps the middle slice took."""
    if args.warm_iterations is not None:
        return args.warm_iterations
    return max(1, int(int(middle["steps"]) * warm_fraction(args) + 1e-9))


def task_and_method(args: argparse.Namespace) -> tuple[Any, Any]:
    """The task and method a volume's options ask for, every option checked, nothing read or computed
    (``run_volume``, and ``aseqdip batch --volumes`` before any study runs)."""
    task_cls = pipeline.task_class(args)
    task = task_cls.from_args(args)
    method = pipeline.make_method(args, task_cls)
    check_options(args, method)
    return task, method


def run_volume(args: argparse.Namespace, on_slice: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Reconstruct the slices of ``args.input`` and write the volume's folder; returns volume.json's contents."""
    from .io import StagedOutput

    task, method = task_and_method(args)
    fingerprint = pipeline.check_before_computing(args)
    full = read_volume(args.input)
    start, stop = slice_range(args, full.n_slices)
    volume = full.slab(start, stop)
    slices, affine = prepare(args, task, full)
    affine = slab_affine(affine, start)
    if slices.unit is not None:
        from .preflight import check_image_size

        check_image_size(*slices.unit.shape[1:], f"{args.input} (as reconstructed)", args.device)
    noise = shared_noise(args, slices, full.n_slices)
    order = walk(start, stop, cold=args.cold)
    needed_by: dict[int, list[int]] = {}
    for k, neighbour in order:
        if neighbour is not None:
            needed_by.setdefault(neighbour, []).append(k)
    work = open_work(args, fingerprint)
    records = work.finished()
    kept: dict[int, Weights] = {}
    warm_iterations = 0  # set once the middle slice is done
    try:
        for position, (k, neighbour) in enumerate(order):
            if k in records:
                if neighbour is None and position == 0:
                    warm_iterations = warm_ceiling(args, records[k])
                continue
            problem = slices.problem(k)
            pipeline.check_problem(args, problem)
            if noise is not None:
                problem.settings["shared_noise"] = noise
            start_from = None
            if neighbour is not None:
                start_from = kept.get(neighbour) or work.weights(neighbour)
            warm = WarmStart(start_from, optimizer=bool(args.warm_optimizer), mix=warm_mix(args),
                             input=warm_input(args), consistent=warm_input_dc(args))
            chosen = method if neighbour is None else warm_method(method, warm_iterations,
                                                                  ramp=bool(getattr(args, "warm_ramp", False)))
            began = time.perf_counter()
            result = solve_slice(args, chosen, problem, warm)
            values = slices.values(result.image, problem)
            record = slice_record(k, position, neighbour, result, problem, time.perf_counter() - began)
            later = [j for j in needed_by.get(k, []) if j not in records]
            if later and warm.final is not None:
                kept[k] = warm.final
            work.save(k, values, record, kept.get(k))
            records[k] = record
            for j in list(kept) + ([neighbour] if neighbour is not None else []):
                if all(i in records for i in needed_by.get(j, [])):  # every slice that starts from j is done
                    kept.pop(j, None)
                    work.drop_weights(j)
            if position == 0:
                warm_iterations = warm_ceiling(args, record)
            if on_slice is not None:
                on_slice(record)
        ordered = [records[k] for k in range(start, stop)]
        values = np.stack([work.values(k) for k in range(start, stop)])
        summary = summarise(args, full, volume, (start, stop), ordered, method, warm_iterations, affine, fingerprint)
        summary["shared_noise"] = noise
        with StagedOutput(args.out, replace=bool(getattr(args, "overwrite", False))) as out:
            write_outputs(out, slices, volume, values, affine, ordered, summary)
    except NonFiniteError as exc:
        exc.kept = kept_note(work.path, len(records), stop - start)
        raise
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted; {kept_note(work.path, len(records), stop - start)}") from None
    shutil.rmtree(work.path, ignore_errors=True)  # the results are in place: the work folder has done its job
    return summary


def kept_note(path: Path, done: int, total: int) -> str:
    """What an interrupted volume left on disk, and how to go on."""
    if not done:
        return f"no slice was finished; nothing was written but the work folder {path}"
    return (f"{done} of {total} slices are finished and kept in {path}: rerun the same command with --resume to "
            f"continue from there")


def _mean(records: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in records if r.get(key) is not None]
    return round(float(np.mean(values)), 4) if values else None


def summarise(args: argparse.Namespace, full: Volume, volume: Volume, span: tuple[int, int],
              records: list[dict[str, Any]], method: Any, warm_iterations: int, affine: np.ndarray,
              fingerprint: dict[str, Any]) -> dict[str, Any]:
    """volume.json: the means over slices, the totals, the first (cold) slice against the rest, the options."""
    first = next(r for r in records if r["order"] == 0)
    rest = [r for r in records if r["order"] != 0]
    summary: dict[str, Any] = {
        "command": "volume", "task": args.task, "method": method.name, "input": args.input,
        "input_kind": full.kind, "modality": full.modality, "input_slices": full.n_slices,
        "slices": list(span),
        "start": "cold" if args.cold else "warm", "iterations": getattr(method, "iterations", None),
        "warm_iterations": None if args.cold else warm_iterations, "warm_optimizer": bool(args.warm_optimizer),
        "warm_mix": None if args.cold else warm_mix(args),
        "warm_ramp": None if args.cold else bool(getattr(args, "warm_ramp", False)),
        "warm_input": None if args.cold else warm_input(args),
        "warm_input_dc": None if args.cold else warm_input_dc(args),
        "stop": args.stop, "mean_psnr": _mean(records, "psnr"), "mean_ssim": _mean(records, "ssim"),
        "mean_psnr_measurement": _mean(records, "psnr_measurement"),
        "mean_psnr_oracle_best": _mean(records, "psnr_oracle_best"),
        "oracle_note": "psnr_oracle_best is the best PSNR along each slice's run, found with the ground truth; no "
                       "user has it. psnr is the returned image's.",
        "total_seconds": round(sum(r["wall_seconds"] for r in records), 3),
        "total_steps": int(sum(r["steps"] for r in records)),
        "first_slice": {"index": first["index"], "steps": first["steps"], "seconds": first["wall_seconds"]},
        "later_slices_mean_steps": _mean(rest, "steps"), "later_slices_mean_seconds": _mean(rest, "wall_seconds"),
        "affine": np.round(affine, 6).tolist(), "voxel_mm": [round(float(np.linalg.norm(affine[:3, c])), 6)
                                                             for c in range(3)],
        "geometry_known": full.geometry_known, "hyperparameters": method.hyperparameters(),
        "fingerprint": fingerprint,
        "environment": {"aseqdip": __version__, "torch": torch.__version__, "python": platform.python_version(),
                        "machine": platform.processor() or platform.machine(), "torch_threads": torch.get_num_threads()},
    }
    if first["seconds"]:
        summary["total_over_first_slice_seconds"] = round(summary["total_seconds"] / first["wall_seconds"], 3)
    return summary


def write_outputs(out: Any, slices: Slices, volume: Volume, values: np.ndarray, affine: np.ndarray,
                  records: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    """volume.nii.gz, volume.npy, dicom/ (DICOM input), montage.png, slices.csv, volume.json into ``out``."""
    from .io.outputs import write_npy
    from .io.volume_outputs import write_dicom_series, write_montage, write_nifti, write_slices_csv

    summary["shape"] = list(values.shape)
    write_npy(out.path("volume.npy"), values.astype(np.float32))
    write_nifti(out.path("volume.nii.gz"), values, affine)
    files = ["volume.nii.gz", "volume.npy", "montage.png", "slices.csv", "volume.json"]
    if volume.is_dicom:
        modality = volume.modality if volume.modality.upper() in ("CT", "MR") else "MR"
        summary["dicom_series_uid"] = write_dicom_series(
            out.path("dicom"), values, affine, volume.template, modality, volume.slice_thickness,
            f"aseqdip {summary['method']} ({summary['start']} start)")
        files.insert(2, "dicom/")
    write_montage(out.path("montage.png"), np.stack([slices.display(v) for v in values]))
    write_slices_csv(out.path("slices.csv"), records)
    summary["files"] = files
    write_json(out.path("volume.json"), summary)
