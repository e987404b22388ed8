"""Special files (FIFOs, sockets, devices) and folders that hold aseqdip's own results, found before reading.

Why: opening a FIFO blocks until someone writes to it, so a named pipe given as an image (or lying in a batch's
input folder) hung the tool silently; and a batch scanning a folder that holds an earlier run's outputs took
those PNG/NPY files for studies. Both are decided from the file system alone, before any file is read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ..errors import UserInputError

RUN_RECORDS = ("metrics.json", "volume.json")  # what a finished run, or volume, leaves in its folder
BATCH_META = ".batch"  # the folder a batch keeps its ledger in, inside its --out


def special_kind(path: str | Path) -> str | None:
    """"FIFO", "socket", "device" (character or block) for such a file; None for a regular file, a folder or
    a path that does not exist. Symbolic links are followed."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if stat.S_ISFIFO(mode):
        return "FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return None


def refuse_special(path: str | Path, what: str = "") -> None:
    """One line naming ``path`` when it is a special file: aseqdip reads regular files only."""
    kind = special_kind(path)
    if kind is not None:
        label = f"{what} {path}" if what else str(path)
        raise UserInputError(f"{label}: a {kind}, not a regular file; aseqdip reads regular files only")


def is_result_folder(folder: str | Path) -> bool:
    """True for a folder an aseqdip run, volume or batch wrote (it holds their record or a batch ledger)."""
    folder = Path(folder)
    return any((folder / name).is_file() for name in RUN_RECORDS) or (folder / BATCH_META).is_dir()
