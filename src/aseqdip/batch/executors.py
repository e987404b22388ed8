"""Where the studies run: one at a time in this process, or as Ray tasks (a local instance by default).

Both take the jobs and a callback for each finished record, so the driver does not care which runs
them. Ray schedules each study with ``cpus_per_study`` CPUs and ``gpus_per_study`` GPUs, retries a
study whose worker died (``max_retries``) or raised an unexpected error (``retry_exceptions``), and,
with no address, starts a private local instance that ends with the batch.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ..errors import UserInputError
from .worker import StudyJob, run_study

OnRecord = Callable[[dict[str, Any]], None]


def _failure(job: StudyJob, exc: BaseException, attempts: int | None = None) -> dict[str, Any]:
    last = traceback.format_exception_only(type(exc), exc)[-1].strip()
    record = {"study": job.study.id, "source": job.study.describe(), "status": "failed", "error": last[:500]}
    if attempts is not None:
        record["attempts"] = attempts
    return record


def run_serial(jobs: Sequence[StudyJob], on_record: OnRecord, retries: int) -> None:
    """Run the studies one after another in this process, each tried at most ``retries + 1`` times."""
    for job in jobs:
        for attempt in range(retries + 1):
            try:
                on_record(run_study(job))
                break
            except Exception as exc:  # noqa: BLE001 - any failure of one study is recorded; the batch goes on
                if attempt == retries:
                    on_record(_failure(job, exc, attempts=attempt + 1))


@contextmanager
def ray_session(address: str | None) -> Iterator[None]:
    """Connected to the Ray cluster at ``address`` (None: a new local instance, stopped on exit)."""
    try:
        import ray
    except ImportError:
        raise UserInputError("the batch needs Ray: pip install 'aseqdip[ray]' (or use --executor serial)") from None

    started_here = not ray.is_initialized()
    if started_here:
        try:
            # "local", not None: Ray's None joins the cluster in RAY_ADDRESS or the last one started on
            # this machine, where the batch promises a private instance
            with _worker_niceness(None if address else "0"):
                ray.init(address=address or "local", include_dashboard=False, log_to_driver=False,
                         logging_level="ERROR", configure_logging=True)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise UserInputError(f"cannot reach a Ray cluster at {address!r}: {exc}") from None
    try:
        yield
    finally:
        if started_here:
            ray.shutdown()


@contextmanager
def _worker_niceness(value: str | None) -> Iterator[None]:
    """The niceness a local instance started meanwhile gives its workers (None: Ray's own), unless the user set it.

    Ray starts workers at niceness 15, below everything else on the machine. A private local instance's workers
    run the studies the user asked for, so they run at the priority of the command that started them, as Ray's
    own job submission does: beside two busy processes on 2 cores the killed-driver test (two runs of a 4-study
    batch) took 193-231 s at Ray's niceness and 45 s at 0 (measured). The variable is read when the instance
    starts, and put back after."""
    key = "RAY_worker_niceness"
    if value is None or key in os.environ:
        yield
        return
    os.environ[key] = value
    try:
        yield
    finally:
        os.environ.pop(key, None)


def run_on_ray(jobs: Sequence[StudyJob], on_record: OnRecord, retries: int, *, cpus_per_study: float,
               gpus_per_study: float) -> None:
    """Run the studies as Ray tasks (inside :func:`ray_session`)."""
    import ray

    task = ray.remote(num_cpus=cpus_per_study, num_gpus=gpus_per_study, max_retries=retries,
                      retry_exceptions=True)(run_study)
    pending = {task.remote(job): job for job in jobs}
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        job = pending.pop(ready[0])
        try:
            on_record(ray.get(ready[0]))
        except Exception as exc:  # noqa: BLE001 - out of retries (RayTaskError, WorkerCrashedError, ...)
            on_record(_failure(job, getattr(exc, "cause", None) or exc))
