"""The walk over a volume's slices, cold then warm, and the volume's outputs (``aseqdip volume``)."""

from __future__ import annotations

import dataclasses
import platform
import shutil
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from .. import __version__, pipeline
from ..engine.state import Reconstruction
from ..engine.warm import WarmStart, Weights
from ..errors import Interrupted, NonFiniteError
from ..io.outputs import write_json
from ..io.volumes import Volume, read_volume, slab_affine
from ..options import RunOptions
from ..report import cpu_model
from .defaults import check_options, volume_options, warm_ceiling, warm_input, warm_input_dc, warm_method, warm_mix
from .slices import Slices, prepare, shared_noise, slice_range, walk
from .work import kept_note, open_work


def solve_slice(options: RunOptions, method: Any, problem: Any, warm: WarmStart) -> Reconstruction:
    """Reconstruct one slice through the pipeline, with ``warm`` loading (and keeping) network weights."""
    return pipeline.solve(options, method, problem, callbacks=[warm])



def slice_record(k: int, order: int, neighbour: int | None, result: Reconstruction, problem: Any,
                 wall: float) -> dict[str, Any]:
    """What slices.csv and volume.json say about one slice."""
    from ..report import oracle_best

    record: dict[str, Any] = {"index": k, "order": order, "start": "cold" if neighbour is None else "warm",
                              "warm_from": neighbour, "steps": result.iterations,
                              "iteration_returned": result.iteration_returned, "seconds": round(result.seconds, 3),
                              "wall_seconds": round(wall, 3), "rule": result.rule,
                              "stop_reason": result.info.get("stop_reason", "") or "budget",
                              "stop": result.info.get("stopping", {}).get("stop")}
    if neighbour is None:  # the method as the cold slice ran it (auto's ramp included), for volume.json
        record["hyperparameters"] = result.hyperparameters
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



def task_and_method(options: RunOptions) -> tuple[Any, Any]:
    """The task and method a volume's options ask for, every option checked, nothing read or computed
    (``run_volume``, and ``aseqdip batch --volumes`` before any study runs)."""
    task_cls = pipeline.task_class(options)
    task = pipeline.make_task(options, task_cls)
    method = pipeline.make_method(options, task_cls)
    check_options(options, method)
    return task, method


def run_volume(options: RunOptions, on_slice: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Reconstruct the slices of ``options.volume.input`` and write the volume's folder; returns volume.json's
    contents."""
    from ..io import StagedOutput

    v = volume_options(options)
    task, method = task_and_method(options)
    fingerprint = pipeline.check_before_computing(options)
    full = read_volume(v.input)
    start, stop = slice_range(v, full.n_slices)
    volume = full.slab(start, stop)
    slices, affine = prepare(options, task, full)
    affine = slab_affine(affine, start)
    if slices.unit is not None:
        from ..preflight import check_image_size

        check_image_size(*slices.unit.shape[1:], f"{v.input} (as reconstructed)", options.device)
    # --init: every cold slice (the middle one; all with --cold) starts from those weights, as `aseqdip run --init`
    prior, prior_moments = pipeline.initial_weights(options.init, method, options.task) if options.init else (None, False)
    noise = shared_noise(options, slices, full.n_slices, method)
    order = walk(start, stop, cold=v.cold)
    asked = options.stopping.stop
    needed_by: dict[int, list[int]] = {}
    for k, neighbour in order:
        if neighbour is not None:
            needed_by.setdefault(neighbour, []).append(k)
    work = open_work(options.out, fingerprint, options.resume)
    records = work.finished()
    kept: dict[int, Weights] = {}
    warm_iterations = cold_ramp = 0  # set once the middle slice is done
    try:
        for position, (k, neighbour) in enumerate(order):
            if k in records:
                if neighbour is None and position == 0:
                    warm_iterations = warm_ceiling(v, records[k], asked)
                    cold_ramp = int((records[k].get("hyperparameters") or {}).get("ramp", 0))
                continue
            problem = slices.problem(k)
            pipeline.check_problem(options, problem)
            problem.hints = dataclasses.replace(problem.hints, shared_noise=noise, warm_slice=neighbour is not None,
                                                fitted_start=neighbour is None and prior is not None)
            if neighbour is None:
                warm = WarmStart(prior, optimizer=prior_moments)
            else:
                start_from = kept.get(neighbour) or work.weights(neighbour)
                warm = WarmStart(start_from, optimizer=v.warm_optimizer, mix=warm_mix(v), input=warm_input(v),
                                 consistent=warm_input_dc(v))
            ramp = cold_ramp if v.warm_ramp else 0
            chosen = method if neighbour is None else warm_method(method, warm_iterations, ramp=ramp)
            began = time.perf_counter()
            result = solve_slice(options, chosen, problem, warm)
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
                warm_iterations = warm_ceiling(v, record, asked)
                cold_ramp = int((result.hyperparameters or {}).get("ramp", 0))
            if on_slice is not None:
                on_slice(record)
        ordered = [records[k] for k in range(start, stop)]
        values = np.stack([work.values(k) for k in range(start, stop)])
        summary = summarise(options, full, volume, (start, stop), ordered, method, warm_iterations, affine, fingerprint)
        summary["shared_noise"] = None if noise is None else noise.describe()
        with StagedOutput(options.out, replace=options.overwrite) as out:
            write_outputs(out, slices, volume, values, affine, ordered, summary)
    except NonFiniteError as exc:
        exc.kept = kept_note(work.path, len(records), stop - start)
        raise
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted; {kept_note(work.path, len(records), stop - start)}") from None
    shutil.rmtree(work.path, ignore_errors=True)  # the results are in place: the work folder has done its job
    return summary



def _mean(records: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in records if r.get(key) is not None]
    return round(float(np.mean(values)), 4) if values else None


def summarise(options: RunOptions, full: Volume, volume: Volume, span: tuple[int, int],
              records: list[dict[str, Any]], method: Any, warm_iterations: int, affine: np.ndarray,
              fingerprint: dict[str, Any]) -> dict[str, Any]:
    """volume.json: the means over slices, the totals, the first (cold) slice against the rest, the options."""
    first = next(r for r in records if r["order"] == 0)
    rest = [r for r in records if r["order"] != 0]
    v = volume_options(options)
    summary: dict[str, Any] = {
        "command": "volume", "task": options.task, "method": method.name, "input": v.input,
        "input_kind": full.kind, "modality": full.modality, "input_slices": full.n_slices,
        "slices": list(span),
        "start": "cold" if v.cold else "warm", "init": options.init, "iterations": getattr(method, "iterations", None),
        "warm_iterations": None if v.cold else warm_iterations, "warm_optimizer": v.warm_optimizer,
        "warm_mix": None if v.cold else warm_mix(v),
        "warm_ramp": None if v.cold else v.warm_ramp,
        "warm_input": None if v.cold else warm_input(v),
        "warm_input_dc": None if v.cold else warm_input_dc(v),
        "stop": options.stopping.stop, "mean_psnr": _mean(records, "psnr"), "mean_ssim": _mean(records, "ssim"),
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
        "geometry_known": full.geometry_known, "hyperparameters": first.get("hyperparameters") or method.hyperparameters(),
        "fingerprint": fingerprint,
        "environment": {"aseqdip": __version__, "torch": torch.__version__, "python": platform.python_version(),
                        "machine": platform.processor() or platform.machine(), "cpu": cpu_model(),
                        "torch_threads": torch.get_num_threads()},
    }
    if first["seconds"]:
        summary["total_over_first_slice_seconds"] = round(summary["total_seconds"] / first["wall_seconds"], 3)
    return summary


def write_outputs(out: Any, slices: Slices, volume: Volume, values: np.ndarray, affine: np.ndarray,
                  records: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    """volume.nii.gz, volume.npy, dicom/ (DICOM input), montage.png, slices.csv, volume.json into ``out``."""
    from ..io.outputs import write_npy
    from ..io.volume_outputs import write_dicom_series, write_montage, write_nifti, write_slices_csv

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
