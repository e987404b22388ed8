"""Fingerprints: what shapes a run's result, so that a resumed or rerun job is provably the same job.

A run's fingerprint is a flat dict: the aseqdip version, the command, every option that can change the
result under its command-line name (task, method, hyper-parameters, seed, stopping rule, ...) and, for
options that name input files, the files' contents (a SHA-256 up to 256 MiB, else size and modification
time). Options that only say where or how visibly to work (``--out``, ``--device``, ``--no-progress``,
checkpointing) are left out. Checkpoints and every run's ``metrics.json`` record it; a resume or a
batch rerun compares them and names the first setting that differs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import __version__

# options that name input files or folders: their contents count, not their paths (a method's own, such as
# refguided's --references, are added when the method registers: add_input_option)
INPUT_OPTIONS = ["image", "input", "kspace", "sinogram", "angles_file", "reference", "maps", "blur_model", "init"]


def add_input_option(key: str) -> None:
    """Count the contents of the file or folder option ``key`` (its parsed attribute name), not its path."""
    if key not in INPUT_OPTIONS:
        INPUT_OPTIONS.append(key)
# options that do not change the result
NOT_SHAPING = frozenset({"command", "out", "overwrite", "resume", "checkpoint_every", "no_progress", "device",
                         "save_weights"})
HASH_LIMIT = 256 * 2**20
VERSION_KEY = "aseqdip version"


def option_name(key: str) -> str:
    """``lr_input`` -> ``--lr-input``."""
    return f"--{key.replace('_', '-')}"


def input_files(options: Mapping[str, Any]) -> dict[str, Path]:
    """The local files and folders the options (a flat record, :meth:`aseqdip.options.RunOptions.record`) name
    as inputs (``skimage:NAME`` images are not files)."""
    found = {}
    for key in INPUT_OPTIONS:
        value = options.get(key)
        if isinstance(value, str) and value and not value.startswith("skimage:"):
            found[option_name(key)] = Path(value)
    return found


def file_identity(path: str | Path) -> str:
    """What a file holds: ``sha256:...`` (files up to 256 MiB), else its size and modification time.

    A folder's identity covers the names and identities of the files in it.
    """
    from .io.special import refuse_special

    p = Path(path)
    if not p.exists():
        return "missing"
    refuse_special(p)  # reading a FIFO would wait for a writer forever
    if p.is_dir():
        digest = hashlib.sha256()
        for child in sorted(p.rglob("*")):
            refuse_special(child)
        for child in sorted(q for q in p.rglob("*") if q.is_file()):
            digest.update(f"{child.relative_to(p)}\0{file_identity(child)}\0".encode())
        return f"folder sha256:{digest.hexdigest()}"
    size = p.stat().st_size
    if size > HASH_LIMIT:
        return f"{size} bytes, modified {p.stat().st_mtime_ns} ns"
    digest = hashlib.sha256()
    with open(p, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return f"sha256:{digest.hexdigest()}"


def plain(value: Any) -> Any:
    """``value`` as JSON-like data (lists, dicts, numbers, strings), tensors by their contents' hash."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "detach") and hasattr(value, "shape"):  # a tensor (kept out of the import list)
        data = value.detach().cpu().contiguous().numpy().tobytes()
        return f"tensor {list(value.shape)} sha256:{hashlib.sha256(data).hexdigest()}"
    if hasattr(value, "item") and hasattr(value, "dtype"):  # a NumPy scalar
        return value.item()
    return repr(value)


def run_fingerprint(options: Mapping[str, Any]) -> dict[str, Any]:
    """The fingerprint of the run the options describe (a flat record, :meth:`aseqdip.options.RunOptions.record`;
    see the module docstring)."""
    inputs = input_files(options)
    fp: dict[str, Any] = {VERSION_KEY: __version__, "command": options.get("command")}
    for key, value in options.items():
        if key in NOT_SHAPING:
            continue
        name = option_name(key)
        fp[name] = file_identity(inputs[name]) if name in inputs else plain(value)
    return fp


def first_difference(saved: Mapping[str, Any], current: Mapping[str, Any]) -> str | None:
    """The first key (in ``current``'s order, then ``saved``'s) whose values differ, or None."""
    for key in [*current, *(k for k in saved if k not in current)]:
        if plain(saved.get(key)) != plain(current.get(key)):
            return key
    return None


def describe_difference(key: str, saved: Mapping[str, Any], current: Mapping[str, Any], saved_label: str,
                        current_label: str) -> str:
    """One phrase: ``--seed is 7 in the checkpoint but 0 in this run``."""
    old, new = saved.get(key), current.get(key)
    if key in {option_name(k) for k in INPUT_OPTIONS} and old not in (None, "missing") and new not in (None, "missing"):
        return f"the contents of {key} differ between {saved_label} and {current_label}"
    return f"{key} is {_shown(old)} in {saved_label} but {_shown(new)} in {current_label}"


def _shown(value: Any) -> str:
    if value is None:
        return "unset (its default)"
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
