"""Writing results: PNG, NPY and JSON, each written atomically, staged so a failed run leaves nothing.

:class:`StagedOutput` collects a run's files in a hidden temporary folder beside the destination and
moves them in only when the run has finished, so the output folder never holds half a result.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np


def atomic_write(path: Path, write: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes the file private; results are ordinary files
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path: Path, data: dict[str, Any]) -> None:
    text = json.dumps(data, indent=2, sort_keys=False, default=_jsonable) + "\n"
    atomic_write(Path(path), lambda f: f.write(text.encode()))


def write_npy(path: Path, array: np.ndarray) -> None:
    atomic_write(Path(path), lambda f: np.save(f, array, allow_pickle=False))


def write_png(path: Path, image: np.ndarray) -> None:
    """Save an (H, W) or (H, W, 3) image in [0, 1] as 8-bit PNG."""
    from PIL import Image

    arr = np.clip(np.nan_to_num(image), 0.0, 1.0)
    arr = (arr * 255.0 + 0.5).astype(np.uint8)
    atomic_write(Path(path), lambda f: Image.fromarray(arr).save(f, format="PNG"))


def _jsonable(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return str(value)


class StagedOutput:
    """A run's output folder, filled in a staging folder and committed at the end.

    Use as a context manager: on success every staged file is moved into ``dest`` (files of the same
    name are replaced, others left alone); on any error the staging folder is removed and ``dest`` is
    untouched (not even created). When ``dest`` does not exist yet the whole folder appears at once (one
    rename), so a process killed at any moment leaves either no folder or a complete one; batch runs
    rely on that to tell finished studies from unfinished ones.
    """

    def __init__(self, dest: str | Path) -> None:
        self.dest = Path(dest)
        self.stage: Path | None = None

    def __enter__(self) -> "StagedOutput":
        parent = self.dest.resolve().parent
        parent.mkdir(parents=True, exist_ok=True)
        self.stage = Path(tempfile.mkdtemp(prefix=f".{self.dest.name}.partial-", dir=parent))
        return self

    def path(self, name: str) -> Path:
        assert self.stage is not None, "use StagedOutput as a context manager"
        return self.stage / name

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        assert self.stage is not None
        try:
            if exc_type is None and not self.dest.exists():
                os.chmod(self.stage, 0o755)  # mkdtemp made it private (0700); give it a normal folder's mode
                os.rename(self.stage, self.dest)
            elif exc_type is None:
                for item in sorted(self.stage.iterdir()):
                    os.replace(item, self.dest / item.name)
        finally:
            shutil.rmtree(self.stage, ignore_errors=True)

