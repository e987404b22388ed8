"""Every command-line path once, briefly, on a device: does it run there and write its results?

    PYTHONPATH=src python benchmarks/device_smoke.py --device cuda --out DIR [--budget 180]

CPU tests cannot catch a tensor left on the CPU while the run is on a GPU (the first H200 run found one
that failed every simulated non-CT run at its end). This runs, in one process (no start-up per case),
each task, each method, each stopping rule, checkpoint and resume, ``aseqdip volume`` with DICOM in
and out, and measured fastMRI-layout k-space through ``reconstruct`` and ``volume``, for a few steps at 32 px
on ``--device``, and writes ``DIR/device-smoke.json`` and
``device-smoke.md`` as it goes: per case, passed or the last lines of its error. Cases are ordered by
how much of the product they cover, so a budget cut short still says the most. Not a benchmark: the
figures it prints are not quality figures.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from aseqdip.cli import main as cli

STEPS = ["--iterations", "12", "--no-progress", "--track-every", "2", "--seed", "0"]
SHORT = ["--size", "32", *STEPS]  # measured k-space takes STEPS alone: its size is the file's
PHOTO = ["--image", "skimage:astronaut"]


def dicom(name: str) -> str:
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name)
    if path is None:
        raise FileNotFoundError(name)
    return str(path)


def cases() -> list[tuple[str, list[str]]]:
    """(name, argv after the output options) for each path, the most-used first."""
    mr, ct = dicom("MR_small.dcm"), dicom("CT_small.dcm")
    out: list[tuple[str, list[str]]] = [
        ("run denoise auto", ["run", "--task", "denoise", *PHOTO, "--sigma", "25"]),
        ("run inpaint box auto", ["run", "--task", "inpaint", *PHOTO, "--hiar", "0.25"]),
        ("run inpaint random auto", ["run", "--task", "inpaint", *PHOTO, "--mask", "random", "--missing", "0.5"]),
        ("run deblur nonlinear auto", ["run", "--task", "deblur", *PHOTO, "--noise", "0.05"]),
        ("run mri 4x auto", ["run", "--task", "mri", "--image", mr, "--acceleration", "4"]),
        ("run mri 4x sigma 5 auto", ["run", "--task", "mri", "--image", mr, "--acceleration", "4", "--sigma", "5"]),
        ("run ct 18 views auto", ["run", "--task", "ct", "--image", ct, "--views", "18"]),
        ("run ct photons auto", ["run", "--task", "ct", "--image", ct, "--views", "18", "--photons", "1e5"]),
    ]
    for method in ("dip", "selfguided", "tvdip", "esdip", "sgld", "rethinking"):
        out.append((f"run denoise {method}", ["run", "--task", "denoise", *PHOTO, "--sigma", "25", "--method", method]))
    out += [
        ("run mri cs", ["run", "--task", "mri", "--image", mr, "--acceleration", "4", "--method", "cs"]),
        ("run ct fbp", ["run", "--task", "ct", "--image", ct, "--views", "18", "--method", "fbp"]),
        ("run mri dip", ["run", "--task", "mri", "--image", mr, "--acceleration", "4", "--method", "dip"]),
        ("run ct dip", ["run", "--task", "ct", "--image", ct, "--views", "18", "--method", "dip"]),
        ("stop none + observers", ["run", "--task", "denoise", *PHOTO, "--sigma", "25", "--stop", "none",
                                   "--observe", "discrepancy,discrepancy_ema,wmv,sure,residual"]),
        ("stop selfval refit (mri)", ["run", "--task", "mri", "--image", mr, "--acceleration", "4", "--stop", "selfval",
                                      "--refit", "--stop-patience", "4"]),
        ("stop selfval (inpaint)", ["run", "--task", "inpaint", *PHOTO, "--hiar", "0.25", "--stop", "selfval",
                                    "--stop-patience", "4"]),
        ("stop sure", ["run", "--task", "denoise", *PHOTO, "--sigma", "25", "--stop", "sure", "--stop-patience", "4"]),
        ("stop wmv", ["run", "--task", "denoise", *PHOTO, "--sigma", "25", "--stop", "wmv", "--es-window", "4",
                      "--es-patience", "4"]),
        ("stop discrepancy ema", ["run", "--task", "deblur", *PHOTO, "--noise", "0.05", "--stop", "discrepancy",
                                  "--ema", "0.9"]),
        ("precision bf16", ["run", "--task", "denoise", *PHOTO, "--sigma", "25", "--precision", "bf16"]),
        ("ramp + warm-up", ["run", "--task", "mri", "--image", mr, "--acceleration", "4", "--ramp", "4", "--warmup", "4"]),
    ]
    return out


def fastmri_file(where: Path) -> Path:
    """A small multi-coil file in fastMRI's layout (3 slices, 4 birdcage coils, 64x64), simulated from MR_small."""
    import deepinv as dinv
    import numpy as np
    import pydicom
    import torch

    from aseqdip.io.fastmri import write_fastmri
    from aseqdip.physics.mri import birdcage_maps, to_complex

    path = where / "file_smoke.h5"
    if path.exists():
        return path
    pixels = pydicom.dcmread(dicom("MR_small.dcm")).pixel_array.astype(np.float32)
    image = torch.from_numpy(pixels / pixels.max())[None, None]
    physics = dinv.physics.MultiCoilMRI(coil_maps=birdcage_maps(4, 64, 64), img_size=(64, 64))
    k = to_complex(physics.A(torch.cat([image, torch.zeros_like(image)], 1)))[0].numpy()  # (coils, H, W)
    kspace = np.stack([k * (s + 1) for s in range(3)]).astype(np.complex64)
    where.mkdir(parents=True, exist_ok=True)
    write_fastmri(path, kspace, rss=np.abs(kspace).sum(1).astype(np.float32))
    return path


def references(where: Path) -> Path:
    """A folder with two reference photographs for Ref-Guided DIP (scikit-image's chelsea and coffee)."""
    from PIL import Image
    from skimage import data

    folder = where / "references"
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("chelsea", "coffee"):
        Image.fromarray(getattr(data, name)()).save(folder / f"{name}.png")
    return folder


def run_case(argv: list[str], out: Path) -> tuple[int, str]:
    """Run one command in this process; (exit status, what it printed)."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        try:
            status = cli([*argv, "--out", str(out)])
        except SystemExit as exc:
            status = int(exc.code or 0)
        except Exception:
            traceback.print_exc()
            status = 99
    return status, printed.getvalue()


def interrupted_then_resumed(argv: list[str], out: Path, after: float = 1.5) -> dict[str, Any]:
    """A long run stopped by Ctrl-C (SIGALRM raising KeyboardInterrupt) ``after`` seconds in, then the
    same command with ``--resume``: the checkpoint is read back onto the device."""
    longer = [*argv[: argv.index("--iterations")], "--iterations", "600", "--checkpoint-every", "20",
              *argv[argv.index("--iterations") + 2:]]

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, after)
    try:
        first, printed = run_case(longer, out)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    if first != 130 and first != 0:
        return {"status": f"interrupted run: exit {first}", "tail": printed.strip().splitlines()[-40:]}
    if first == 0:
        return {"status": "skipped (finished before the interrupt)"}
    t0 = time.perf_counter()
    second, printed = run_case([*longer, "--resume"], out)
    return {"status": "passed" if second == 0 else f"exit {second}", "seconds": round(time.perf_counter() - t0, 2),
            "tail": printed.strip().splitlines()[-40:]}


def extra_cases(device: str, where: Path) -> list[tuple[str, list[str]]]:
    """Cases that need files made here (references, a k-space file) or a device-specific argv order, and
    the checkpoint that :func:`interrupted_then_resumed` follows."""
    kspace = str(fastmri_file(where))
    photo = ["run", "--task", "denoise", *PHOTO, "--sigma", "25", "--stop", "none", "--device", device, *SHORT]
    emri = dicom("emri_small.dcm")  # pydicom-data's enhanced multi-frame MR, 10 frames
    return [
        ("checkpoint", [*photo, "--checkpoint-every", "4"]),
        ("run denoise refguided", ["run", "--task", "denoise", *PHOTO, "--sigma", "25", "--method", "refguided",
                                   "--references", str(references(where)), "--device", device, *SHORT]),
        ("volume mri warm, DICOM in and out", ["volume", "--task", "mri", "--input", emri, "--acceleration", "4",
                                               "--slices", "3", "--device", device, *SHORT]),
        ("volume mri cold", ["volume", "--task", "mri", "--input", emri, "--acceleration", "4", "--slices", "3",
                             "--cold", "--device", device, *SHORT]),
        ("reconstruct fastMRI k-space", ["reconstruct", "--task", "mri", "--kspace", kspace, "--slice", "1",
                                         "--acceleration", "4", "--center-fraction", "0.2", "--device", device, *STEPS]),
        ("volume fastMRI k-space", ["volume", "--task", "mri", "--input", kspace,
                                    "--acceleration", "4", "--center-fraction", "0.2", "--device", device, *STEPS]),
        ("volume denoise", ["volume", "--task", "denoise", "--input", emri, "--sigma", "25", "--slices", "3",
                            "--device", device, *SHORT]),
    ]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--budget", type=float, default=180.0, help="seconds; cases not started by then are skipped")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="smoke-"))
    todo = [(name, [*argv, "--device", args.device, *SHORT]) for name, argv in cases()]
    todo += extra_cases(args.device, work)
    started = time.perf_counter()
    results: dict[str, Any] = {"device": args.device, "cases": {}}
    for index, (name, argv) in enumerate(todo):
        if time.perf_counter() - started > args.budget:
            results["cases"][name] = {"status": "skipped (budget)"}
            continue
        t0 = time.perf_counter()
        status, printed = run_case(argv, work / f"case{index}")
        results["cases"][name] = {"status": "passed" if status == 0 else f"exit {status}",
                                  "seconds": round(time.perf_counter() - t0, 2), "argv": " ".join(argv),
                                  "tail": printed.strip().splitlines()[-40:]}
        print(f"{name}: {results['cases'][name]['status']} ({results['cases'][name]['seconds']} s)", flush=True)
        if name == "checkpoint" and status == 0:
            results["cases"]["interrupt, then resume"] = interrupted_then_resumed(argv, work / "resume")
            print(f"interrupt, then resume: {results['cases']['interrupt, then resume']['status']}", flush=True)
        (args.out / "device-smoke.json").write_text(json.dumps(results, indent=1) + "\n")
    lines = [f"# Smoke run on {args.device}", "", "| case | result | s |", "|---|---|---:|"]
    for name, r in results["cases"].items():
        lines.append(f"| {name} | {r['status']} | {r.get('seconds', '')} |")
    (args.out / "device-smoke.md").write_text("\n".join(lines) + "\n")
    failed = [n for n, r in results["cases"].items() if r["status"] not in ("passed",) and "skipped" not in r["status"]]
    print(f"{len(results['cases']) - len(failed)} of {len(results['cases'])} passed or skipped; failed: {failed}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
