"""The noise estimator's error in the auto study (issue 18): the sigma a rule used against the noise drawn.

    .venv/bin/python -m benchmarks.auto_noise              # the table
    .venv/bin/python -m benchmarks.auto_noise --backfill   # add the drawn noise to rows made before it was recorded

Every study row records the noise level its rule used (``noise.sigma``, estimated from y) and, since the
drawn noise was recorded too, ``noise.realised_oracle``: the RMS of y - A x_true over the measured
entries, which needs the ground truth. ``--backfill`` recomputes it for older rows from their recorded
command (same image, size, task options and seed, so the same draw) and marks them ``backfilled``.
On data with no noise added (inpainting here, noise-free MRI and CT) the drawn noise is about zero and the
estimate is what the image content (or, for MRI, the reference image's own noise) leaves in y.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from benchmarks.auto_study import RESULTS

NOISE_FREE = 1e-6  # drawn noise below this: the setting adds none


def drawn_noise(command: str) -> float:
    """The noise drawn by a recorded ``aseqdip run`` command's simulation (an oracle: it reads x_true)."""
    from aseqdip.cli import options_from_argv
    from aseqdip.pipeline import make_task, realised_noise_of, task_class

    options = options_from_argv(shlex.split(command)[1:])  # drop the executable
    task = make_task(options, task_class(options))
    problem = task.simulate(task.load(options.image, size=options.size), seed=options.seed)
    return realised_noise_of(problem)


def backfill(results: Path = RESULTS) -> list[Path]:
    """Add ``noise.realised_oracle`` to the rows that lack it; the files changed."""
    changed = []
    for path in sorted(results.glob("*/metrics.json")):
        m = json.loads(path.read_text())
        noise = m.get("noise")
        if not noise or "realised_oracle" in noise:
            continue
        noise["realised_oracle"] = drawn_noise(m["environment"]["command"])
        noise["backfilled"] = "realised_oracle recomputed from the recorded command by benchmarks/auto_noise.py"
        path.write_text(json.dumps(m, indent=1))
        changed.append(path)
    return changed


def noise_lines(rows: dict[tuple, dict[str, Any]]) -> list[str]:
    """Per task and setting: the estimate against the drawn noise over the rows that used an estimate."""
    groups: dict[tuple, list[tuple[float, float]]] = defaultdict(list)
    for key, m in rows.items():
        noise = m.get("noise") or {}
        if noise.get("source") == "estimate" and "realised_oracle" in noise:
            groups[key[:3]].append((noise["sigma"], noise["realised_oracle"]))
    lines = ["| task, setting | px | rows | drawn noise | estimate / drawn: mean (range) |", "|---|---|---|---|---|"]
    for (task, setting, size), pairs in sorted(groups.items()):
        drawn = statistics.mean(d for _, d in pairs)
        if drawn < NOISE_FREE:
            ratio = f"none drawn; estimate {statistics.mean(e for e, _ in pairs):.3g}"
        else:
            r = [e / d for e, d in pairs]
            ratio = f"{statistics.mean(r):.3f} ({min(r):.3f}-{max(r):.3f})"
        lines.append(f"| {task}, {setting} | {size} | {len(pairs)} | {drawn:.4g} | {ratio} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="auto_noise", description=__doc__.split("\n")[0])
    p.add_argument("--results", type=Path, default=RESULTS)
    p.add_argument("--backfill", action="store_true", help="add the drawn noise to rows that lack it")
    args = p.parse_args(argv)
    if args.backfill:
        for path in backfill(args.results):
            print(f"backfilled {path.parent.name}")
    from benchmarks.auto_table import load_rows

    print("\n".join(noise_lines(load_rows(args.results))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
