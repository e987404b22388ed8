"""Checks made before any computation: a run that cannot succeed is refused in one line, not after hours.

Each check raises :class:`~aseqdip.errors.UserInputError` and leaves the file system as it found it:

* :func:`check_numbers`: every numeric option is finite (argparse reads ``nan`` and ``inf`` as floats);
* :func:`check_device`: ``--device`` names a device that exists here;
* :func:`check_output`: ``--out`` can be written, is new or empty (or ``--overwrite`` of an earlier run's
  folder), and holds none of the inputs;
* :func:`check_image_size`: an image is at least the SSIM window and small enough for the memory.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .errors import UserInputError
from .fingerprint import option_name
from .metrics import SSIM_WINDOW

MIN_SIDE = SSIM_WINDOW  # smaller images have no SSIM (and no structure to reconstruct)
# A lower bound of the memory one gradient step needs per pixel: measured 7-9 KB at 256x256 for the
# medium and shallow U-Nets and the skip network (activations kept for the backward pass, Adam state).
# Only runs certain not to fit are refused.
BYTES_PER_PIXEL = 4096
# the file that marks a folder as an aseqdip result, which --overwrite may replace: a run's, a volume's, a prior's
RUN_SUMMARIES = ("metrics.json", "volume.json", "prior.json")


def check_numbers(options: Mapping[str, Any]) -> None:
    """Refuse NaN or infinite values in any numeric option (``--lr nan``, ``--lam inf``, ``--hu-window inf 1``) of
    a flat record of options (:meth:`aseqdip.options.RunOptions.record`)."""
    for key, value in options.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            if isinstance(v, float) and not math.isfinite(v):
                raise UserInputError(f"{option_name(key)} must be a finite number, got {v}")


def check_device(name: str) -> None:
    """Refuse a ``--device`` that is not a device, or one this machine does not have."""
    import torch

    if name == "auto":
        return
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise UserInputError(f"--device {name!r} is not a device; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cpu":
        return
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise UserInputError(f"--device {name}: no CUDA GPU is available on this machine; use --device cpu or auto")
        if device.index is not None and device.index >= count:
            raise UserInputError(f"--device {name}: this machine has {count} CUDA GPU{'s' if count > 1 else ''} "
                                 f"(cuda:0 to cuda:{count - 1})")
        return
    if device.type == "mps" and torch.backends.mps.is_available():
        return
    raise UserInputError(f"--device {name}: not available here; use auto, cpu or cuda[:N]")


def check_output(out: Path, *, overwrite: bool = False, inputs: Iterable[Path] = (), option: str = "--out") -> None:
    """Refuse an output folder that would lose or mix files, or that cannot be written.

    ``out`` must not exist, or be an empty folder, or (with ``overwrite``) an earlier run's folder (it holds
    ``metrics.json``, a volume's ``volume.json``), which the run then replaces as a whole. It may never hold an input, nor the
    current folder. Its parent must be writable (the results are staged beside it).
    """
    check_out_name(out, option)
    if out.is_symlink():
        raise UserInputError(f"{option} {out} is a symbolic link (to {os.readlink(out)}); give the folder itself, "
                             f"so that no run replaces the link or writes where it does not show")
    where = out.resolve()
    for path in inputs:
        p = Path(path).resolve()
        if p == where or where in p.parents:
            raise UserInputError(f"{option} {out} holds the input {path}; write the results to another folder")
    if out.exists():
        if not out.is_dir():
            raise UserInputError(f"{option} {out} exists and is not a folder")
        if where == Path.cwd().resolve() or where in Path.cwd().resolve().parents:
            raise UserInputError(f"{option} {out} is the current folder or holds it; choose a new folder")
        if any(out.iterdir()):
            if not overwrite:
                raise UserInputError(f"{option} {out} already holds files; choose a new folder, or add --overwrite "
                                     f"to replace an earlier run's folder as a whole")
            if not any((out / name).is_file() for name in RUN_SUMMARIES):
                raise UserInputError(f"{option} {out} holds files that are not an aseqdip run's results; "
                                     f"--overwrite replaces only an earlier run's folder")
    check_writable(where.parent, f"{option} {out}")


# the longest name a run makes beside --out: ".NAME.partial-PID-xxxxxxxx" (PID up to 7 digits)
STAGING_EXTRA = len("..partial--xxxxxxxx") + 7


def check_out_name(out: Path, option: str = "--out") -> None:
    """Refuse a folder name too long for the names a run makes beside it (checked before any file system call:
    a name over the file system's limit makes every call on it fail)."""
    try:
        limit = os.pathconf(out.parent if str(out.parent) else ".", "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    length = len(out.name.encode())
    if length + STAGING_EXTRA > limit:
        raise UserInputError(f"{option}: the folder name is {length} bytes long; with the staging name a run "
                             f"makes beside it (.NAME.partial-PID-xxxxxxxx) it must stay within this file "
                             f"system's {limit}, so use at most {limit - STAGING_EXTRA}")


def check_writable(folder: Path, what: str) -> None:
    """Refuse ``what`` when ``folder`` (or, if missing, its nearest existing ancestor) cannot take new files."""
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UserInputError(f"{what}: {existing} is a file, not a folder")
    try:  # the real test (permissions, read-only mounts, quotas): make and remove an empty folder
        os.rmdir(tempfile.mkdtemp(prefix=".aseqdip-write-test-", dir=existing))
    except OSError as exc:
        raise UserInputError(f"{what}: cannot write in {existing} ({exc.strerror or type(exc).__name__})") from None


def check_image_size(height: int, width: int, what: str, device: str = "auto", *, minimum: bool = True) -> None:
    """Refuse an image below the SSIM window (``minimum``) or one whose run cannot fit in memory."""
    if minimum and min(height, width) < MIN_SIDE:
        raise UserInputError(f"{what} is {height}x{width} pixels; aseqdip needs at least {MIN_SIDE}x{MIN_SIDE} "
                             f"(the SSIM window)")
    need = BYTES_PER_PIXEL * height * width
    have = available_memory(device)
    if have is not None and need > have:
        raise UserInputError(f"{what} is {height}x{width} pixels: a run needs at least {_bytes(need)} of memory "
                             f"({BYTES_PER_PIXEL // 1024} KiB per pixel), more than the {_bytes(have)} available; "
                             f"use a smaller --size")


def available_memory(device: str = "auto") -> int | None:
    """Free bytes on ``device`` (a GPU's free memory, or the system's available RAM); None if unknown."""
    import torch

    from .engine.precision import resolve_device

    try:
        dev = resolve_device(device)
        if dev.type == "cuda":
            return int(torch.cuda.mem_get_info(dev)[0])
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (OSError, ValueError, RuntimeError, AttributeError):
        return None


def _bytes(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"
