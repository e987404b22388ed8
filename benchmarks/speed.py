"""Seconds per iteration and peak memory of our loop against a plain PyTorch loop and deepinv's DIP.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/speed.py --quick --steps 2
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/speed.py --configs ct256 --steps 4 --batch 2
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/speed.py --final-psnr --psnr-steps 300

One run, one machine, every configuration side by side (aSeqDIP's problem: Adam lr 1e-4, N = 2,
lambda = 1, the task's network and physics):

* ``ours_fp32``: ``ASeqDIP(precision="fp32")`` on the one loop (engine/loop.py), with its loss tracking.
* ``ours_cl``, ``ours_bf16``, ``ours_compile``: the same with a channels_last input, bf16 autocast
  (only where the CPU has AMX/AVX512-BF16 or on a GPU, unless ``--candidates`` names it) and
  torch.compile (only with ``--candidates``: compiling costs minutes on a CPU). ``ours_fast`` in the
  table is the fastest of the ``ours_*`` rows of that configuration, measured, not assumed.
* ``plain``: the authors' setup as a plain fp32 eager loop written below in 15 lines (default Adam).
* ``deepinv``: ``deepinv.models.DeepImagePrior`` with the same network: Vanilla DIP, so it has no
  z <- f(z) forward every N steps (a lighter step than aSeqDIP's).
* ``batched``: ``engine.stacked.reconstruct_many`` on ``--batch`` copies of the problem (own seeds);
  its ms/it is per problem, so its ratio is the throughput gain over one-at-a-time runs.

Each row runs ``--warmup`` steps, then times ``--steps`` steps (mean; per-step times are in the JSON).
Memory: on CUDA ``torch.cuda.max_memory_allocated``; on a CPU the growth of the process's peak resident
set over the row (VmHWM reset through /proc/self/clear_refs after gc and malloc_trim), which also counts
allocator caching, so it is approximate. Ratios are plain ms/it divided by the row's ms/it (above 1 is
faster than the plain loop). ``--final-psnr`` runs a few hundred steps of the same seed in fp32 and in
the other settings on a small real image and reports the PSNR differences (the issue asks for 0.2 dB).
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import gc
import json
import os
import platform
import time
from pathlib import Path

import torch
from torch import nn

from aseqdip.engine.callbacks import Callback
from aseqdip.engine.precision import cpu_has_fast_bf16, resolve_device
from aseqdip.engine.stacked import reconstruct_many
from aseqdip.methods import ASeqDIP
from aseqdip.nets import NETWORKS
from aseqdip.tasks import CT, MRI, Denoise

# name: (task factory, image, size)
CONFIGS = {
    "mri320": (lambda: MRI(coils=15), "skimage:camera", 320),
    "ct256": (lambda: CT(views=18), "skimage:camera", 256),
    "ct512": (lambda: CT(views=18), "skimage:camera", 512),
    "denoise256": (lambda: Denoise(25), "skimage:astronaut", 256),
    "denoise512": (lambda: Denoise(25), "skimage:astronaut", 512),
    "mri64": (lambda: MRI(coils=15), "skimage:camera", 64),
    "ct64": (lambda: CT(views=18), "skimage:camera", 64),
    "denoise64": (lambda: Denoise(25), "skimage:astronaut", 64),
}
PAPER = ("mri320", "ct256", "ct512", "denoise256", "denoise512")
QUICK = ("mri64", "ct64", "denoise64")
LR, INNER, LAM = 1e-4, 2, 1.0


def plain_loop(net: nn.Module, z: torch.Tensor, y: torch.Tensor, A, steps: int, tick) -> torch.Tensor:
    """The authors' setup, eager fp32: Adam on MSE(A f(z), y) + lambda MSE(f(z), z); z <- f(z) every N steps."""
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    mse = nn.MSELoss()
    for k in range(steps):
        out = net(z)
        loss = mse(A(out), y) + LAM * mse(out, z)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (k + 1) % INNER == 0:
            with torch.no_grad():
                z = net(z)
        tick()
    return z


# ---- measuring ------------------------------------------------------------------------------------
class Clock:
    """Per-step wall times; on CUDA the device is synchronised only at the first and last tick."""

    def __init__(self, device: torch.device, warmup: int, total: int) -> None:
        self.device, self.warmup, self.total = device, warmup, total
        self.count, self.stamps = 0, []

    def tick(self) -> None:
        self.count += 1
        if not self.warmup <= self.count <= self.total:
            return
        if self.device.type == "cuda" and self.count in (self.warmup, self.total):
            torch.cuda.synchronize(self.device)
        self.stamps.append(time.perf_counter())

    def step_seconds(self) -> list[float]:
        return [b - a for a, b in zip(self.stamps, self.stamps[1:])]


class ClockCallback(Callback):
    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def on_step(self, state) -> None:
        self.clock.tick()


class Memory:
    """Peak memory of one row (see the module docstring for what the CPU figure means)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def __enter__(self) -> Memory:
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start = torch.cuda.memory_allocated(self.device)
        else:
            try:
                ctypes.CDLL("libc.so.6").malloc_trim(0)
            except OSError:
                pass
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # resets VmHWM to the current RSS
            self.start = _status_kib("VmRSS") * 1024
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            self.peak = torch.cuda.max_memory_allocated(self.device)
        else:
            self.peak = _status_kib("VmHWM") * 1024

    def mib(self) -> float:
        return round((self.peak - self.start) / 2**20, 1)


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


# ---- one row per setting ----------------------------------------------------------------------------
class ChannelsLast(nn.Module):
    """Feeds the network a channels_last input, so that oneDNN/cuDNN pick their NHWC kernels."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.contiguous(memory_format=torch.channels_last)).contiguous()


def network_factory(task, wrap: str):
    base = NETWORKS[task.network]

    def build(cin: int, cout: int, generator: torch.Generator) -> nn.Module:
        net = base(cin, cout, generator=generator)
        if wrap == "cl":
            return ChannelsLast(net)
        if wrap == "compile":
            return torch.compile(net)
        return net

    return build


def row_ours(problem, task, setting: str, dev, warmup: int, steps: int) -> dict:
    precision = "bf16" if setting == "bf16" else "fp32"
    wrap = setting if setting in ("cl", "compile") else ""
    clock = Clock(dev, warmup, warmup + steps)
    method = ASeqDIP(iterations=warmup + steps, lr=LR, inner_steps=INNER, lam=LAM, device=str(dev),
                     precision=precision, network=network_factory(task, wrap), seed=0)
    with Memory(dev) as mem:
        result = method.reconstruct(problem.y, problem.physics, x0=problem.x0, callbacks=[ClockCallback(clock)])
    return {"step_seconds": clock.step_seconds(), "peak_mib": mem.mib(), "precision": result.info["precision"]}


def row_plain(problem, task, dev, warmup: int, steps: int) -> dict:
    torch.manual_seed(0)
    net = NETWORKS[task.network](problem.x0.shape[1], problem.x0.shape[1],
                                 generator=torch.Generator().manual_seed(0)).to(dev).train()
    physics = problem.physics.to(dev) if isinstance(problem.physics, nn.Module) else problem.physics
    clock = Clock(dev, warmup, warmup + steps)
    with Memory(dev) as mem:
        plain_loop(net, problem.x0.to(dev).clone(), problem.y.to(dev), physics.A, warmup + steps, clock.tick)
    return {"step_seconds": clock.step_seconds(), "peak_mib": mem.mib(), "precision": "fp32"}


def row_deepinv(problem, task, dev, warmup: int, steps: int) -> dict:
    import deepinv as dinv

    torch.manual_seed(0)
    c = problem.x0.shape[1]
    net = NETWORKS[task.network](c, c, generator=torch.Generator().manual_seed(0)).to(dev)
    # a tick starts each forward, so step k lasts from tick k to tick k + 1; the last timed step ends at
    # the final forward that DeepImagePrior runs after its loop
    clock = Clock(dev, warmup + 1, warmup + steps + 1)
    net.register_forward_pre_hook(lambda module, args: clock.tick())
    dip = dinv.models.DeepImagePrior(net, img_size=tuple(problem.x0.shape[1:]), iterations=warmup + steps,
                                     learning_rate=LR)
    physics = problem.physics.to(dev) if isinstance(problem.physics, nn.Module) else problem.physics
    with Memory(dev) as mem:
        dip(problem.y.to(dev), physics)
    return {"step_seconds": clock.step_seconds(), "peak_mib": mem.mib(), "precision": "fp32"}


def row_batched(problem, task, dev, warmup: int, steps: int, batch: int) -> dict:
    clock = Clock(dev, warmup, warmup + steps)
    method = ASeqDIP(iterations=warmup + steps, lr=LR, inner_steps=INNER, lam=LAM, device=str(dev),
                     precision="fp32", seed=0)
    with Memory(dev) as mem:
        reconstruct_many(method, [problem] * batch, seeds=range(batch), callbacks=[ClockCallback(clock)])
    per_problem = [s / batch for s in clock.step_seconds()]
    return {"step_seconds": per_problem, "peak_mib": mem.mib(), "precision": "fp32", "batch": batch}


def candidates(dev: torch.device, requested: str | None) -> list[str]:
    if requested:
        return [c for c in requested.split(",") if c]
    fast_bf16 = dev.type == "cuda" or cpu_has_fast_bf16()
    return ["cl", "bf16"] if fast_bf16 else ["cl"]


def make_problem(name: str, device: torch.device):
    factory, image, size = CONFIGS[name]
    task = factory()
    x = task.load(image, size=size)
    return task, task.simulate(x, seed=0)


def mean_ms(row: dict) -> float:
    s = row["step_seconds"]
    return 1000.0 * sum(s) / len(s) if s else float("nan")


def bench(args, dev) -> list[dict]:
    rows = []
    for name in args.configs:
        task, problem = make_problem(name, dev)
        shape = f"{problem.x0.shape[1]}->{problem.x0.shape[1]} {problem.x0.shape[-2]}x{problem.x0.shape[-1]}"
        results: dict[str, dict] = {}
        results["plain"] = row_plain(problem, task, dev, args.warmup, args.steps)
        results["ours_fp32"] = row_ours(problem, task, "fp32", dev, args.warmup, args.steps)
        for cand in candidates(dev, args.candidates):
            results[f"ours_{cand}"] = row_ours(problem, task, cand, dev, args.warmup, args.steps)
        if not args.no_deepinv:
            results["deepinv"] = row_deepinv(problem, task, dev, args.warmup, args.steps)
        if args.batch > 1:
            results[f"batched{args.batch}"] = row_batched(problem, task, dev, args.warmup, args.steps, args.batch)
        plain = mean_ms(results["plain"])
        ours = {k: mean_ms(v) for k, v in results.items() if k.startswith("ours_")}
        fastest = min(ours, key=ours.get)
        for variant, row in results.items():
            ms = mean_ms(row)
            rows.append({"config": name, "task": task.name, "network": task.network, "shape": shape,
                         "variant": variant, "ms_per_it": round(ms, 2), "speedup_vs_plain": round(plain / ms, 3),
                         "fastest_of_ours": variant == fastest, **row})
            print(f"{name:11s} {shape:14s} {variant:12s} {ms:10.1f} ms/it  x{plain / ms:5.2f} vs plain  "
                  f"peak {row['peak_mib']:8.1f} MiB{'  <- fastest of ours' if variant == fastest else ''}",
                  flush=True)
        if args.batch > 1:
            gain = ours["ours_fp32"] / mean_ms(results[f"batched{args.batch}"])
            print(f"{name:11s} batched throughput vs one at a time (ours_fp32): x{gain:.2f}", flush=True)
    return rows


def final_psnr(args, dev) -> dict:
    """Same seed, a few hundred steps: PSNR of ours fp32 against the other settings and the plain loop."""
    task = Denoise(25)
    problem = task.simulate(task.load("skimage:astronaut", size=args.psnr_size), seed=0)
    out = {"image": f"skimage:astronaut {args.psnr_size}x{args.psnr_size}, sigma 25, shallow U-Net",
           "steps": args.psnr_steps, "psnr": {}}
    for setting in ["fp32", *candidates(dev, args.psnr_candidates or args.candidates)]:
        precision = "bf16" if setting == "bf16" else "fp32"
        wrap = setting if setting in ("cl", "compile") else ""
        method = ASeqDIP(iterations=args.psnr_steps, lr=LR, inner_steps=INNER, lam=LAM, device=str(dev),
                         precision=precision, network=network_factory(task, wrap), seed=0)
        image = method.reconstruct(problem.y, problem.physics, x0=problem.x0).image
        out["psnr"][f"ours_{setting}"] = round(float(problem.psnr(image)), 3)
    net = NETWORKS[task.network](3, 3, generator=torch.Generator().manual_seed(0)).to(dev).train()
    z = plain_loop(net, problem.x0.to(dev).clone(), problem.y.to(dev), problem.physics.A, args.psnr_steps,
                   lambda: None)
    out["psnr"]["plain"] = round(float(problem.psnr(z)), 3)
    ref = out["psnr"]["ours_fp32"]
    out["difference_vs_ours_fp32_db"] = {k: round(v - ref, 3) for k, v in out["psnr"].items() if k != "ours_fp32"}
    out["input_psnr"] = round(float(problem.psnr(problem.x0)), 3)
    for k, v in out["psnr"].items():
        print(f"final PSNR after {args.psnr_steps} steps  {k:12s} {v:7.3f} dB  "
              f"({v - ref:+.3f} dB vs ours_fp32)", flush=True)
    return out


def machine() -> dict:
    model = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    info = {"cpu": model, "cpu_fast_bf16": cpu_has_fast_bf16(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
            "date": datetime.datetime.now().isoformat(timespec="seconds"), "hostname": platform.node()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", type=lambda s: s.split(","), default=None,
                   help=f"comma-separated from {', '.join(CONFIGS)} (default: the paper sizes)")
    p.add_argument("--quick", action="store_true", help=f"the small sizes {', '.join(QUICK)}")
    p.add_argument("--steps", type=int, default=4, help="timed steps per row (even: aSeqDIP's N = 2 blocks)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--device", default="auto")
    p.add_argument("--candidates", default=None, help="our settings to try besides fp32: cl,bf16,compile")
    p.add_argument("--batch", type=int, default=0, help="also time reconstruct_many on this many problems")
    p.add_argument("--no-deepinv", action="store_true")
    p.add_argument("--final-psnr", action="store_true", help="only the PSNR check of the fast settings")
    p.add_argument("--psnr-steps", type=int, default=300)
    p.add_argument("--psnr-size", type=int, default=64)
    p.add_argument("--psnr-candidates", default=None)
    p.add_argument("--out", default=None, help="JSON path (default benchmarks/results/speed-<date>.json)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    dev = resolve_device(args.device)
    args.configs = args.configs or (list(QUICK) if args.quick else list(PAPER))
    unknown = [c for c in args.configs if c not in CONFIGS]
    if unknown:
        p.error(f"unknown configs {unknown}; choose from {list(CONFIGS)}")
    report = {"machine": machine(), "device": str(dev), "settings": {k: v for k, v in vars(args).items()},
              "aseqdip": {"lr": LR, "inner_steps": INNER, "lam": LAM}}
    print(f"{report['machine']['cpu']}, torch {torch.__version__}, {torch.get_num_threads()} thread(s), {dev}")
    if args.final_psnr:
        report["final_psnr"] = final_psnr(args, dev)
    else:
        report["rows"] = bench(args, dev)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = Path(args.out or Path(__file__).parent / "results" / f"speed-{'psnr-' if args.final_psnr else ''}{stamp}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
