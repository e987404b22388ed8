"""The batch driver: find the studies, skip the finished ones, run the rest, keep ``results.csv`` current.

Every study's options are checked once, before any work, by the same parser and builders as a single
``aseqdip run``; a bad option is one clear error, not N failed studies. A rerun into an existing OUT
must be the same job: a finished (or checkpointed) study made with other settings or from another
file is refused by name before anything runs (the fingerprints of ``aseqdip.fingerprint``), and an OUT
that is not a batch's folder is not written into.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import pipeline
from ..errors import Interrupted, UserInputError
from ..fingerprint import describe_difference, first_difference, run_fingerprint
from ..options import RunOptions
from .executors import ray_session, run_on_ray, run_serial
from .ledger import Ledger
from .studies import find_studies, find_volumes
from .worker import StudyJob

EXECUTORS = ("ray", "serial")


@dataclass
class BatchSummary:
    studies: int
    already_done: int  # finished by an earlier run of the batch: not run again
    done: int  # finished now
    failed: int
    skipped_files: int  # files under the input that are not studies
    results: Path
    wall_seconds: float

    def line(self) -> str:
        skipped = f"; {self.skipped_files} other files skipped" if self.skipped_files else ""
        return (f"batch: {self.studies} studies: {self.already_done} already finished, {self.done} done now, "
                f"{self.failed} failed ({self.wall_seconds:.1f} s){skipped}; results in {self.results}")


def run_batch(task: str, input_spec: str, out: str | Path, options: Sequence[str] = (), *,
              read_options: Callable[[Sequence[str]], RunOptions], executor: str = "ray", address: str | None = None,
              cpus_per_study: int | None = None, gpus_per_study: float = 0, retries: int = 2,
              checkpoint_every: int | None = None, progress: bool = True, volumes: bool = False,
              describe_error: Callable[[str], str] | None = None) -> BatchSummary:
    """Reconstruct every study under ``input_spec`` into ``out/<study>/`` and write ``out/results.csv``.

    ``options`` are options of ``aseqdip run`` (``reconstruct`` for fastMRI files) shared by all studies,
    or with ``volumes`` options of ``aseqdip volume``, each volume (series, NIfTI, ...) one study;
    ``read_options`` turns a study's command line into its options (``aseqdip.cli.options_from_argv``: the
    command's own grammar, passed in so that the batch does not import the command line; a module-level
    function, so that it travels to Ray workers by reference). ``describe_error`` says a failed study's error in the
    command's terms in results.csv (``aseqdip.cli.in_command_terms``; the library's own terms without it).
    """
    if executor not in EXECUTORS:
        raise UserInputError(f"unknown executor {executor!r}; choose from {', '.join(EXECUTORS)}")
    if retries < 0:
        raise UserInputError(f"--retries must be 0 or more, got {retries}")
    if cpus_per_study is not None and cpus_per_study < 1:
        raise UserInputError(f"--cpus-per-study must be at least 1, got {cpus_per_study}")
    if not 0 <= gpus_per_study < float("inf"):  # NaN fails too
        raise UserInputError(f"--gpus-per-study must be a finite number, 0 or more, got {gpus_per_study}")
    if checkpoint_every is not None and checkpoint_every < 1:
        raise UserInputError(f"--checkpoint-every must be at least 1, got {checkpoint_every}")
    out = Path(out)
    check_batch_folder(out)
    start = time.perf_counter()
    found = (find_volumes if volumes else find_studies)(input_spec, exclude=out)
    threads = cpus_per_study or (1 if executor == "ray" else os.cpu_count() or 1)
    jobs = [StudyJob(s, task, tuple(options), out, threads, checkpoint_every, describe_error=describe_error)
            for s in found.studies]
    check_options(jobs, read_options)
    jobs = [job.parsed(read_options) for job in jobs]

    ledger = Ledger(out)
    check_same_job(jobs, ledger)
    todo = [job for job in jobs if not ledger.is_done(job.study.id)]
    counts = {"done": 0, "failed": 0}

    def on_record(record: dict[str, Any]) -> None:
        ledger.record(record)
        counts[record["status"]] += 1
        ledger.write_results(found.studies)
        bar.update(1)
        bar.set_postfix(failed=counts["failed"])

    on_ray = bool(todo) and executor == "ray"
    with ray_session(address) if on_ray else nullcontext():  # an unreachable cluster fails before OUT exists
        out.mkdir(parents=True, exist_ok=True)
        bar = _progress(len(found.studies), len(found.studies) - len(todo), progress)
        try:
            if on_ray:
                run_on_ray(todo, on_record, retries, cpus_per_study=threads, gpus_per_study=gpus_per_study)
            elif todo:
                run_serial(todo, on_record, retries)
        except KeyboardInterrupt:
            finished = sum(ledger.is_done(s.id) for s in found.studies)
            kept = [pipeline.checkpoint_path(out / s.id) for s in found.studies if not ledger.is_done(s.id)]
            kept = [c for c in kept if c.exists()]
            partial = (f"; the unfinished stud{'y' if len(kept) == 1 else 'ies'}' checkpoint{'s' if len(kept) > 1 else ''} "
                       f"({', '.join(c.name for c in kept)}) {'is' if len(kept) == 1 else 'are'} kept and resumed there"
                       if kept else "")
            raise Interrupted(f"interrupted; {finished} of {len(found.studies)} studies are finished and kept in "
                              f"{out} (results.csv){partial}; rerun the same command to finish the rest") from None
        finally:
            bar.close()
            results = ledger.write_results(found.studies)
    return BatchSummary(len(found.studies), len(found.studies) - len(todo), counts["done"], counts["failed"],
                        len(found.skipped), results, time.perf_counter() - start)


PER_STUDY = ("--image", "--kspace", "--slice", "--resume")  # set by the batch for each study


def check_batch_folder(out: Path) -> None:
    """OUT must be new, empty, or an earlier batch's folder (it has ``.batch/``), in a writable place."""
    from ..preflight import check_writable

    if out.exists() and not out.is_dir():
        raise UserInputError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / ".batch").is_dir():
        raise UserInputError(f"--out {out} already holds files that are not an aseqdip batch's; choose a new folder")
    check_writable(out.resolve().parent, f"--out {out}")


def check_same_job(jobs: Sequence[StudyJob], ledger: Ledger) -> None:
    """Refuse a rerun whose finished or checkpointed studies were made with other settings or inputs."""
    from ..engine.checkpoint import read_checkpoint

    for job in jobs:
        assert job.run is not None
        where = ledger.out / job.study.id
        checkpoint = pipeline.checkpoint_path(where)
        if ledger.is_done(job.study.id):
            saved, label = ledger.fingerprint(job.study.id), "that study"
        elif checkpoint.exists():
            saved, label, where = read_checkpoint(checkpoint).get("fingerprint"), "its checkpoint", checkpoint
        else:
            continue
        if saved is None:
            raise UserInputError(f"{where} records no fingerprint (an older aseqdip's?), so it cannot be matched "
                                 f"to this batch; choose a new --out")
        current = run_fingerprint(pipeline.record(job.run))
        key = first_difference(saved, current)
        if key is not None:
            what = describe_difference(key, saved, current, label, "this batch")
            raise UserInputError(f"{where} was made by another job: {what}; rerun with the options and inputs it "
                                 f"was made with, or choose a new --out")


def check_options(jobs: Sequence[StudyJob], read_options: Callable[[Sequence[str]], RunOptions]) -> None:
    """Parse and build one study of each kind (image, k-space) without running it."""
    for option in jobs[0].options if jobs else ():
        if option.split("=", 1)[0] == "--overwrite":
            raise UserInputError("--overwrite does not apply to a batch: a rerun into the same --out finishes what "
                                 "is missing; choose a new --out to start afresh")
        if option.split("=", 1)[0] in PER_STUDY:
            raise UserInputError(f"{option.split('=', 1)[0]} is set by the batch for each study; name the studies "
                                 f"with --input")

    kinds: dict[str, StudyJob] = {}
    for job in jobs:
        kinds.setdefault(job.study.kind, job)
    for kind, job in kinds.items():
        try:
            options = read_options(job.argv())
        except UserInputError as exc:
            raise UserInputError(f"{exc} (for {KIND_OPTIONS[kind]})") from None
        if kind == "volume":
            from ..volume import task_and_method

            task_and_method(options)
        else:
            pipeline.check_options(options)


KIND_OPTIONS = {"image": "images (options of 'aseqdip run')",
                "kspace": "fastMRI files (options of 'aseqdip reconstruct')",
                "volume": "volumes (options of 'aseqdip volume')"}


def _progress(total: int, initial: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc="studies", unit="study", disable=not enabled, dynamic_ncols=True)

