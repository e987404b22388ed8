"""The work folder beside a volume's output: finished slices, the weights a later slice still needs, resume."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..engine.checkpoint import check_match
from ..engine.warm import Weights
from ..errors import UserInputError
from ..io.outputs import atomic_write, write_json

WORK_FORMAT = 1


def work_folder(out: str | Path) -> Path:
    """Where a volume writing into ``out`` keeps its finished slices: a hidden folder beside it."""
    out = Path(out)
    return out.parent / f".{out.name}.volume"



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


def open_work(out: str | Path, fingerprint: dict[str, Any], resume: bool) -> WorkFolder:
    """The volume's work folder: continued with ``--resume`` when its fingerprint matches, else new.

    Without ``--resume`` a work folder holding finished slices is refused (one line): its slices are kept.
    """
    work = WorkFolder(work_folder(out))
    state = work.path / "state.json"
    if work.path.exists() and state.exists():
        try:
            payload = json.loads(state.read_text())
        except (OSError, ValueError):
            raise UserInputError(f"{state}: unreadable; remove {work.path} to start the volume afresh") from None
        done = len(list(work.path.glob("slice_*.json")))
        if resume:
            check_match(work.path, payload, "fingerprint", fingerprint)
            return work
        if done:
            raise UserInputError(f"{work.path} holds {done} finished slices of an interrupted volume: add --resume to "
                                 f"continue it, or remove that folder to start afresh")
    shutil.rmtree(work.path, ignore_errors=True)
    work.path.mkdir(parents=True)
    write_json(state, {"format": WORK_FORMAT, "fingerprint": fingerprint})
    return work



def kept_note(path: Path, done: int, total: int) -> str:
    """What an interrupted volume left on disk, and how to go on."""
    if not done:
        return f"no slice was finished; nothing was written but the work folder {path}"
    return (f"{done} of {total} slices are finished and kept in {path}: rerun the same command with --resume to "
            f"continue from there")

