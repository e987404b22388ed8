"""Pilot: ramp variants of aSeqDIP on tuning images (not the study's), 64 px, short runs."""
import argparse
import json
import sys

import torch

from aseqdip.methods import ASeqDIP
from aseqdip.tasks import TASKS

torch.set_num_threads(1)

task_name, image, opts, iters = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
extra = sys.argv[5:]
kw = {k: (float(v) if "." in v or "e" in v else int(v)) for k, v in (o.split("=") for o in opts.split(",") if o)}
warmup = kw.get("warmup", 0)
p = argparse.ArgumentParser()
for t in TASKS.values():
    t.add_arguments(p)
args = p.parse_args(extra)
task = TASKS[task_name].from_options(**vars(args))
x = task.load(image, size=64)
prob = task.simulate(x, seed=0)
m = ASeqDIP(iterations=iters, **kw, network=TASKS[task_name].network, device="cpu", precision="fp32")
r = m.reconstruct(prob.y, prob.physics, x0=prob.x0, monitor=prob.psnr, track_every=5)
h = r.history
ps = dict(zip(h["psnr_iteration"], h["psnr"]))
base = float(prob.psnr(prob.x0))
first_above = next((i for i, v in zip(h["psnr_iteration"], h["psnr"]) if i > warmup and v > base), None)
best = max(zip(h["psnr"], h["psnr_iteration"]))
print(json.dumps({"task": task_name, "image": image, "opts": opts, "iters": iters, "base": round(base,2),
   "at": {k: round(ps[k],2) for k in (25,50,100,150,200,300,500,1000,1500,2000) if k in ps}, "first_above": first_above,
   "best": [round(best[0],2), best[1]], "s": round(r.seconds,1)}), flush=True)
