"""Writing results: PNG, NPY and JSON, each written atomically, staged so a failed run leaves nothing.

:class:`StagedOutput` collects a run's files in a hidden temporary folder beside the destination and
puts that folder in place, as a whole, only when the run has finished: the output folder never holds
half a result, nor a mix of two runs' files.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import StorageError, UserInputError


def atomic_write(path: Path, write: Any) -> None:
    """Write ``path`` through a temporary file beside it; a failed write leaves no file and raises
    :class:`~aseqdip.errors.StorageError` (full disk, file size limit, read-only ...), naming the file."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.fchmod(fd, 0o644)  # mkstemp makes the file private; results are ordinary files
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        _remove(tmp)
        raise StorageError(path, exc) from None
    except BaseException:
        _remove(tmp)
        raise


def _remove(tmp: str | None) -> None:
    if tmp is not None and os.path.exists(tmp):
        os.unlink(tmp)


def write_json(path: Path, data: dict[str, Any]) -> None:
    text = json.dumps(data, indent=2, sort_keys=False, default=_jsonable) + "\n"
    atomic_write(Path(path), lambda f: f.write(text.encode()))


def write_npy(path: Path, array: np.ndarray) -> None:
    # serialised first: numpy's own file writes lose the errno of a failed write ("N requested and M written")
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    atomic_write(Path(path), lambda f: f.write(buf.getvalue()))


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
    """A run's output folder, filled in a staging folder and put in place as a whole at the end.

    Use as a context manager. On success the staging folder becomes ``dest`` in one rename: a process
    killed at any moment leaves either no folder or a complete one (batch runs rely on that to tell
    finished studies from unfinished ones). An existing ``dest`` must be empty, or ``replace=True``: it
    is then swapped out as a whole, never mixed with the new files. On any error the staging folder is
    removed and ``dest`` is untouched (not even created). Staging folders that a killed run left beside
    ``dest`` (their process is gone) are removed when the next run for ``dest`` starts.
    """

    def __init__(self, dest: str | Path, replace: bool = False) -> None:
        self.dest = Path(dest)
        self.replace = replace
        self.stage: Path | None = None

    def __enter__(self) -> StagedOutput:
        parent = self.dest.resolve().parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
            remove_stale_staging(self.dest)
            self.stage = Path(tempfile.mkdtemp(prefix=f"{_staging_prefix(self.dest, 'partial')}{os.getpid()}-",
                                               dir=parent))
        except OSError as exc:
            raise StorageError(parent, exc) from None
        return self

    def path(self, name: str) -> Path:
        assert self.stage is not None, "use StagedOutput as a context manager"
        return self.stage / name

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        assert self.stage is not None
        try:
            if exc_type is None:
                _pause_for_tests(self.stage)
                os.chmod(self.stage, 0o755)  # mkdtemp made it private (0700); give it a normal folder's mode
                self._commit()
        finally:
            shutil.rmtree(self.stage, ignore_errors=True)

    def _commit(self) -> None:
        assert self.stage is not None
        if not self.dest.exists():
            os.rename(self.stage, self.dest)
            return
        if not self.dest.is_dir() or (any(self.dest.iterdir()) and not self.replace):
            kept = self.dest.resolve().parent / f"{self.dest.name}.conflict-{os.getpid()}"
            os.rename(self.stage, kept)  # the finished run is not thrown away
            raise UserInputError(f"--out {self.dest}: another run wrote that folder while this one computed; "
                                 f"this run's results are in {kept}")
        old = self.dest.resolve().parent / f"{_staging_prefix(self.dest, 'old')}{os.getpid()}-{self.stage.name[-8:]}"
        os.rename(self.dest, old)  # the earlier folder steps aside as a whole ...
        try:
            os.rename(self.stage, self.dest)  # ... and the new one takes its name
        except BaseException:
            os.rename(old, self.dest)
            raise
        shutil.rmtree(old, ignore_errors=True)


class OutputLock:
    """A file ``.NAME.lock`` beside ``dest`` holding this process's id while a run computes into ``dest``.

    A second run for the same folder is refused before it computes anything (:func:`locked_by`); the lock of
    a process that no longer exists is taken over.
    """

    def __init__(self, dest: str | Path) -> None:
        self.path = lock_path(dest)
        self.dest = Path(dest)

    def __enter__(self) -> OutputLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = locked_by(self.dest)
                if holder is not None:
                    raise UserInputError(_busy(self.dest, holder)) from None
                self.path.unlink(missing_ok=True)  # a dead run's lock
                continue
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            return self
        raise UserInputError(f"--out {self.dest}: could not take the lock {self.path}")

    def __exit__(self, *exc: Any) -> None:
        if locked_by(self.dest) == os.getpid() or not self.path.exists():
            self.path.unlink(missing_ok=True)


def lock_path(dest: str | Path) -> Path:
    dest = Path(dest)
    return dest.resolve().parent / f".{dest.name}.lock"


def locked_by(dest: str | Path) -> int | None:
    """The id of a live process holding ``dest``'s lock (this one included), or None."""
    try:
        pid = int(lock_path(dest).read_text().strip() or 0)
    except (OSError, ValueError):
        return None
    if pid == os.getpid():
        return pid
    return pid if pid and _alive(pid) else None


def refuse_if_locked(dest: str | Path) -> None:
    """One line when another live run is computing into ``dest`` right now."""
    holder = locked_by(dest)
    if holder is not None and holder != os.getpid():
        raise UserInputError(_busy(Path(dest), holder))


def _busy(dest: Path, pid: int) -> str:
    return (f"--out {dest}: another aseqdip run (process {pid}) is writing that folder now; wait for it to end "
            f"or choose another folder")


def _staging_prefix(dest: Path, kind: str) -> str:
    return f".{dest.name}.{kind}-"


def remove_stale_staging(dest: str | Path) -> list[Path]:
    """Clean up after runs for ``dest`` that were killed while saving; return the folders removed.

    A staging folder's name holds the id of the process that made it; those of live processes (another
    run writing to the same place right now) are left alone. A run killed in the middle of a swap left
    the earlier folder aside and ``dest`` missing: that folder is put back, not removed.
    """
    dest = Path(dest)
    parent = dest.resolve().parent
    removed = []
    for kind in ("old", "partial"):
        for path in sorted(parent.glob(f"{_staging_prefix(dest, kind)}*")):
            pid = path.name[len(_staging_prefix(dest, kind)):].split("-", 1)[0]
            if not path.is_dir() or (pid.isdigit() and _alive(int(pid))):
                continue
            if kind == "old" and not dest.exists() and not dest.is_symlink():
                os.rename(path, dest)
                continue
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


PAUSE_ENV = "ASEQDIP_TEST_PAUSE_BEFORE_COMMIT"


def _pause_for_tests(stage: Path) -> None:
    """For the kill-during-save test only: with ``$ASEQDIP_TEST_PAUSE_BEFORE_COMMIT=FILE`` set, write FILE
    once every result is staged and wait (up to a minute) to be killed before the folder is put in place."""
    marker = os.environ.get(PAUSE_ENV)
    if marker:
        Path(marker).write_text(str(stage))
        time.sleep(60)
