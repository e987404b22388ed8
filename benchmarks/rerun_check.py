"""Rerun committed study rows with the code as it is now and compare: the same command, seed and CPU should
give the same returned PSNR and the same number of steps (a refactoring that changes neither is
behaviour-preserving on those rows).

    .venv/bin/python -m benchmarks.rerun_check benchmarks/results/recipe-study/ROW [...] [--out /tmp/rerun]

Each row's ``metrics.json`` holds the command that made it (``environment.command``); its ``--out`` is
replaced and ``--resume``/``--checkpoint-every`` dropped. Rows from another CPU may differ by rounding
(the same seed drifts across CPUs); the table names the machine each row was made on when it recorded it.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def command_of(metrics: dict, out: Path) -> list[str]:
    """The row's recorded command with ``--out`` replaced and checkpointing dropped."""
    words = shlex.split(metrics["environment"]["command"])
    kept: list[str] = []
    skip = 0
    for word in words:
        if skip:
            skip -= 1
            continue
        if word in ("--out", "--checkpoint-every"):
            skip = 1
            continue
        if word == "--resume":
            continue
        kept.append(word)
    kept[0] = str(ROOT / ".venv" / "bin" / "aseqdip")
    return [*kept, "--out", str(out)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("rows", nargs="+", type=Path, help="result folders holding a metrics.json")
    p.add_argument("--out", type=Path, default=None, help="where the reruns go (default: a temporary folder)")
    args = p.parse_args(argv)
    base = args.out or Path(tempfile.mkdtemp(prefix="rerun-"))
    lines = ["| row | committed PSNR, steps | rerun PSNR, steps | same | rerun seconds |", "|---|---|---|---|---|"]
    same_all = True
    for row in args.rows:
        saved = json.loads((row / "metrics.json").read_text())
        out = base / row.name
        started = time.time()
        code = subprocess.run(command_of(saved, out), env={**os.environ, "OMP_NUM_THREADS": "1"},
                              capture_output=True, text=True)
        if code.returncode != 0:
            failed = code.stderr.strip().splitlines()[-1:] or ["?"]
            lines.append(f"| {row.name} | {saved['psnr']:.4f}, {saved['iterations']} | failed: {failed[0]} | no | |")
            same_all = False
            continue
        new = json.loads((out / "metrics.json").read_text())
        same = abs(new["psnr"] - saved["psnr"]) < 1e-4 and new["iterations"] == saved["iterations"]
        same_all &= same
        lines.append(f"| {row.name} | {saved['psnr']:.4f}, {saved['iterations']} | {new['psnr']:.4f}, "
                     f"{new['iterations']} | {'yes' if same else 'NO'} | {time.time() - started:.0f} |")
        print(lines[-1], flush=True)
    print("\n".join(lines))
    return 0 if same_all else 1


if __name__ == "__main__":
    sys.exit(main())
