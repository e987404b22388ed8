"""What a batch has done, kept on disk so that a killed batch can be rerun without redoing anything.

A study is finished when its output folder holds ``metrics.json``: the folder appears in one rename
(``io.StagedOutput``), so it is either absent or complete. Beside the studies, ``OUT/.batch/`` holds
each study's attempt count, the record of its last finished attempt (node, wall time) and, for failed
studies, the error. ``results.csv`` is rebuilt from these files, never edited in place.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..io.outputs import atomic_write, write_json
from .studies import Study

COLUMNS = ("study", "source", "status", "psnr", "ssim", "psnr_measurement", "measurement_is", "psnr_oracle_best",
           "iteration_oracle_best", "iteration_returned", "iterations", "seconds", "wall_seconds", "attempts",
           "node", "error", "output")
METRIC_COLUMNS = ("psnr", "ssim", "psnr_measurement", "measurement_is", "psnr_oracle_best", "iteration_oracle_best",
                  "iteration_returned", "iterations", "seconds")
# a volume's volume.json -> the same columns: means over its slices, its total steps and seconds
VOLUME_COLUMNS = {"psnr": "mean_psnr", "ssim": "mean_ssim", "psnr_measurement": "mean_psnr_measurement",
                  "psnr_oracle_best": "mean_psnr_oracle_best", "iterations": "total_steps", "seconds": "total_seconds"}
RECORDS = ("metrics.json", "volume.json")  # what a finished run, or a finished volume, leaves in its folder


class Ledger:
    def __init__(self, out: str | Path) -> None:
        self.out = Path(out)
        self.meta = self.out / ".batch"

    # ---- per study ------------------------------------------------------------------------------
    def finished_record(self, study_id: str) -> Path | None:
        """The metrics.json (or a volume's volume.json) a finished study left, or None."""
        return next((p for name in RECORDS if (p := self.out / study_id / name).is_file()), None)

    def is_done(self, study_id: str) -> bool:
        return self.finished_record(study_id) is not None

    def fingerprint(self, study_id: str) -> dict[str, Any] | None:
        """The fingerprint a finished study recorded (None: none recorded)."""
        record = self.finished_record(study_id)
        return None if record is None else _read_json(record).get("fingerprint")

    def attempts(self, study_id: str) -> int:
        path = self.meta / "attempts" / study_id
        try:
            return int(path.read_text())
        except (OSError, ValueError):
            return 0

    def count_attempt(self, study_id: str) -> int:
        """Add one to the study's attempt count and return it (one attempt runs at a time per study)."""
        n = self.attempts(study_id) + 1
        atomic_write(self.meta / "attempts" / study_id, lambda f: f.write(str(n).encode()))
        return n

    def clear_partial(self, study_id: str) -> None:
        """Remove staging folders that a killed attempt left (the checkpoint is kept: it is resumed)."""
        for stale in self.out.glob(f".{study_id}.partial-*"):
            shutil.rmtree(stale, ignore_errors=True)

    def record(self, record: dict[str, Any]) -> None:
        """Keep a finished attempt's record: ``done`` beside the outputs, ``failed`` with its error."""
        study_id = record["study"]
        info = {k: v for k, v in record.items() if k != "metrics"}
        if record["status"] == "done":
            write_json(self.meta / "done" / f"{study_id}.json", info)
            (self.meta / "failed" / f"{study_id}.json").unlink(missing_ok=True)
        else:
            write_json(self.meta / "failed" / f"{study_id}.json", info)

    # ---- the summary ----------------------------------------------------------------------------
    def row(self, study: Study) -> dict[str, Any]:
        row: dict[str, Any] = {"study": study.id, "source": study.describe(), "status": "pending"}
        record = self.finished_record(study.id)
        if record is not None:
            metrics = _read_json(record)
            names = VOLUME_COLUMNS if record.name == "volume.json" else {}
            row.update({k: metrics.get(names.get(k, k), "") for k in METRIC_COLUMNS}, status="done",
                       output=str(self.out / study.id))
            row.update(_pick(_read_json(self.meta / "done" / f"{study.id}.json"), ("wall_seconds", "attempts", "node")))
        elif (self.meta / "failed" / f"{study.id}.json").is_file():
            failed = _read_json(self.meta / "failed" / f"{study.id}.json")
            row.update(_pick(failed, ("wall_seconds", "attempts", "node", "error")), status="failed")
        row.setdefault("attempts", self.attempts(study.id))
        return row

    def write_results(self, studies: Sequence[Study]) -> Path:
        """Write ``results.csv`` (one row per study, in discovery order) atomically and return its path."""
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for study in studies:
            row = self.row(study)
            writer.writerow({k: _fmt(row.get(k, "")) for k in COLUMNS})
        path = self.out / "results.csv"
        atomic_write(path, lambda f: f.write(buf.getvalue().encode()))
        return path


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _pick(d: dict[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    return {k: d[k] for k in keys if k in d}


def _fmt(value: Any) -> Any:
    return round(value, 4) if isinstance(value, float) else value
