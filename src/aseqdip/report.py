"""Turn a finished run into files: recon.png/.npy, measurement.png, metrics.json, psnr_curve.png."""

from __future__ import annotations

import datetime as _dt
import platform
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import __version__
from .engine.state import Reconstruction
from .io.outputs import StagedOutput, write_json, write_npy, write_png
from .metrics import to_numpy_image
from .plots import comparison_figure, psnr_curve
from .tasks.base import Problem


def oracle_best(history: dict[str, list[float]]) -> tuple[float, int] | None:
    """The best monitored PSNR along the run and its iteration: an oracle (needs the ground truth)."""
    values = history.get("psnr")
    if not values:
        return None
    finite = [(v, i) for v, i in zip(values, history["psnr_iteration"]) if np.isfinite(v)]
    if not finite:
        return None
    best = max(finite, key=lambda t: t[0])
    return float(best[0]), int(best[1])


def run_metrics(problem: Problem, method_name: str, hyper: dict[str, Any], result: Reconstruction,
                extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything metrics.json holds for one run."""
    image = result.image.cpu()
    finite = bool(torch.isfinite(image).all())
    metrics: dict[str, Any] = {"task": problem.task, "method": method_name}
    scores = problem.metrics(image) if finite else {"psnr": float("nan"), "ssim": float("nan")}
    metrics.update(scores)
    if problem.x_true is not None:
        before = problem.metrics(problem.x0)
        metrics["psnr_measurement"] = before["psnr"]
        metrics["ssim_measurement"] = before["ssim"]
        metrics["measurement_is"] = problem.measurement_label
    metrics.update({
        "seconds": round(result.seconds, 3),
        "seconds_per_iteration": round(result.seconds_per_iteration, 5),
        "iterations": result.iterations,
        "iteration_returned": result.iteration_returned,
        "output_rule": result.rule,
        "seed": hyper.get("seed"),
        "hyperparameters": hyper,
        "task_settings": problem.settings,
        "image_shape": list(problem.x0.shape[1:]),
        "finite_output": finite,
    })
    best = oracle_best(result.history)
    if best is not None:
        metrics["psnr_oracle_best"], metrics["iteration_oracle_best"] = best
        metrics["oracle_note"] = ("psnr_oracle_best is the best PSNR along the run, found with the ground truth; "
                                  "no user has it. The reported psnr is the returned image's.")
    metrics.update(result.info)
    metrics.update(extra or {})
    metrics["history"] = result.history  # curves; "psnr" there is the oracle monitor
    metrics["environment"] = {"aseqdip": __version__, "torch": torch.__version__, "python": platform.python_version(),
                              "machine": platform.processor() or platform.machine(), "cpu": cpu_model(),
                              "torch_threads": torch.get_num_threads(),  # seconds per iteration depend on it
                              "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
                              "command": " ".join(sys.argv)}
    return metrics


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux): runs of the same seed drift apart across CPUs, so a
    result names the one it ran on."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def save_run(out: StagedOutput, problem: Problem, method_name: str, hyper: dict[str, Any],
             result: Reconstruction, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write a run's files into ``out`` (staged) and return its metrics."""
    metrics = run_metrics(problem, method_name, hyper, result, extra)
    write_npy(out.path("recon.npy"), result.image.cpu().numpy()[0])
    write_png(out.path("recon.png"), to_numpy_image(problem.to_image(result.image.cpu())))
    write_png(out.path("measurement.png"), to_numpy_image(problem.to_image(problem.x0.cpu())))
    if problem.x_true is not None:
        write_png(out.path("ground_truth.png"), to_numpy_image(problem.to_image(problem.x_true.cpu())))
    for name, write in problem.extra_outputs.items():  # the task's own diagnostics of its data
        write(out.path(name))
    psnr_curve(out.path("psnr_curve.png"), result.history,
               title=f"{method_name} on {problem.task}: PSNR against iteration (oracle monitor, not used to choose)",
               returned_iteration=result.iteration_returned, measurement_psnr=metrics.get("psnr_measurement"))
    write_comparison(out.path("comparison.png"), problem, method_name, result, metrics)
    write_json(out.path("metrics.json"), metrics)
    return metrics


ZOOMED_TASKS = ("mri", "ct")  # the paper's Figure 5 zooms into the error of its MRI and CT reconstructions


def write_comparison(path: Any, problem: Problem, method_name: str, result: Reconstruction,
                     metrics: dict[str, Any]) -> None:
    """comparison.png: first estimate, returned image, truth (when known) and the returned image's error."""
    def caption(psnr_key: str, ssim_key: str) -> str:
        return f"{metrics[psnr_key]:.2f} dB / SSIM {metrics[ssim_key]:.3f}" if psnr_key in metrics else ""

    returned = to_numpy_image(problem.to_image(result.image.cpu()))
    panels = [(problem.measurement_label, to_numpy_image(problem.to_image(problem.x0.cpu())),
               caption("psnr_measurement", "ssim_measurement")),
              (f"returned ({method_name}, step {result.iteration_returned})", returned, caption("psnr", "ssim"))]
    error = None
    if problem.x_true is not None:
        truth = to_numpy_image(problem.to_image(problem.x_true.cpu()))
        panels.append(("ground truth", truth, ""))
        error = np.abs(returned - truth)
        error = error.mean(axis=-1) if error.ndim == 3 else error
    comparison_figure(path, panels, error=error, error_label=f"max error {float(error.max()):.3f}" if error is not None else "",
                      title=f"{method_name} on {problem.task}", zoom=problem.task in ZOOMED_TASKS)
