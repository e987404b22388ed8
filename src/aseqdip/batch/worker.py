"""Running one study: the same code path as ``aseqdip run`` / ``aseqdip reconstruct``, in any process.

The worker is a plain function of picklable arguments so that Ray (or a simple loop) can call it. A
study with a user error (an unreadable file, an option the task rejects) or a run that went non-finite
returns a failed record at once: running it again would fail the same way. Any other exception propagates, so that the executor
retries it; a killed worker process is retried by Ray itself. Each attempt is counted on disk, and a
checkpoint beside the study's output lets a retried attempt continue where the last one stopped.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .. import pipeline
from ..errors import NonFiniteError, UserInputError
from ..options import RunOptions
from .ledger import Ledger
from .studies import Study


@dataclass(frozen=True)
class StudyJob:
    """Everything a worker needs for one study."""

    study: Study
    task: str
    options: tuple[str, ...]  # options of `aseqdip run` (or `reconstruct`) shared by every study
    out: Path  # the batch's output folder
    threads: int = 1
    checkpoint_every: int | None = None
    run: RunOptions | None = None  # argv() read by the driver (plain values: it travels to Ray workers)
    # says a library error in the command's terms (flags for parameter names: aseqdip.cli.in_command_terms);
    # a module-level function, so that it travels to Ray workers by reference
    describe_error: Callable[[str], str] | None = None

    def argv(self) -> list[str]:
        dest = str(self.out / self.study.id)
        if self.study.volume:  # resumes at its slice by itself: --resume continues a work folder if there is one
            return ["volume", "--task", self.task, "--input", str(self.study.source), *self.options, "--resume",
                    "--no-progress", "--out", dest]
        if self.study.is_kspace:
            head = ["reconstruct", "--task", self.task, "--kspace", str(self.study.source)]
            if self.study.slice_index is not None:
                head += ["--slice", str(self.study.slice_index)]
        else:
            head = ["run", "--task", self.task, "--image", str(self.study.source)]
        saving = ["--checkpoint-every", str(self.checkpoint_every), "--resume"] if self.checkpoint_every else []
        return [*head, *self.options, *saving, "--no-progress", "--out", dest]

    def parsed(self, read_options: Callable[[Sequence[str]], RunOptions]) -> StudyJob:
        """This job with its options read by ``read_options`` (``aseqdip.cli.options_from_argv``)."""
        return replace(self, run=read_options(self.argv()))


def run_study(job: StudyJob) -> dict[str, Any]:
    """Reconstruct one study and return its record (status ``done`` or ``failed``)."""
    import torch

    if job.run is None:
        raise ValueError("a StudyJob runs once its options are parsed (StudyJob.parsed)")
    ledger = Ledger(job.out)
    attempt = ledger.count_attempt(job.study.id)
    ledger.clear_partial(job.study.id)
    # the study's CPUs as torch threads, and the caller's count back afterwards: the serial executor runs
    # studies in the caller's process, which must not go on with another study's thread count (two threads
    # on a core something else keeps busy ran a small U-Net half as fast as one, measured)
    caller_threads = torch.get_num_threads()
    torch.set_num_threads(max(1, job.threads))
    start = time.perf_counter()
    base = {"study": job.study.id, "source": job.study.describe(), "attempts": attempt, "node": _node()}
    try:
        if job.run.command == "volume":
            from ..volume import run_volume

            metrics = run_volume(job.run)
        else:
            metrics = pipeline.execute(job.run)
    except (UserInputError, NonFiniteError) as exc:
        said = job.describe_error(str(exc)) if job.describe_error is not None else str(exc)
        return {**base, "status": "failed", "error": said, "wall_seconds": time.perf_counter() - start}
    finally:
        torch.set_num_threads(caller_threads)
    return {**base, "status": "done", "wall_seconds": time.perf_counter() - start, "metrics": metrics}


def _node() -> str:
    """The Ray node this runs on (or the host name outside Ray): shows how a batch spread over a cluster."""
    try:
        import ray

        if ray.is_initialized():
            return ray.get_runtime_context().get_node_id()[:12]
    except Exception:  # noqa: BLE001 - Ray missing or not in a worker: fall back to the host
        pass
    return socket.gethostname()
