#!/usr/bin/env bash
# One prepared GPU check for the `device` tool (a lent H200; see docs/speed.md, "GPU"): every command-line
# path for a few steps (device_smoke.py), the speed table at the paper's sizes, committed study rows rerun on the GPU, and the emri_small volume cold against warm.
# Run from the repo root with $OUT set and the wheels of .whl (deepinv and what the image lacks) carried:
#   bash benchmarks/device_check.sh
# The wheels (the machine has Python 3.12, torch and scikit-image, nothing else of ours), fetched here once:
#   echo /.whl/ >> .git/info/exclude; .venv/bin/python -m pip download --no-deps --only-binary=:all: \
#     --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
#     --platform manylinux2014_x86_64 -d .whl deepinv==0.5.0 natsort pydicom==3.0.2 pydicom-data==1.0.0 sigpy \
#     PyWavelets nibabel==5.4.2
# Each part has its own time limit, so one failing part leaves the others' figures.
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=4
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=$PWD/src:$PWD:/tmp/site
log=$OUT/device-check.log
{
  date -u; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  python3 -c "import torch, deepinv; print('torch', torch.__version__, 'deepinv', deepinv.__version__, torch.cuda.get_device_name())"
} >"$log" 2>&1
timeout "${SMOKE_S:-120}" python3 benchmarks/device_smoke.py --device cuda --out "$OUT" --budget 90 >>"$log" 2>&1 \
  || echo "smoke: exit $?" >>"$log"
timeout "${SPEED_S:-90}" python3 benchmarks/speed.py --device cuda --configs mri320,ct256,denoise256,denoise512 \
  --steps 10 --warmup 3 --batch 4 --candidates cl,bf16 --out "$OUT/speed-paper-h200.json" >>"$log" 2>&1 || echo "speed: exit $?" >>"$log"
timeout "${RERUN_S:-200}" python3 benchmarks/device_rerun.py --device cuda --out "$OUT/rerun" --timeout 90 \
  denoise-sigma25-64px-astronaut-aseqdip-auto inpaint-hiar0.25-64px-astronaut-aseqdip-auto \
  deblur-noise0.05-64px-astronaut-aseqdip-auto mri-4x-sigma5-64px-MR2_UNCR-aseqdip-auto \
  ct-18views-64px-693_UNCR-aseqdip-auto >>"$log" 2>&1 \
  || echo "rerun: exit $?" >>"$log"
rm -rf "$OUT/rerun/runs"
timeout "${VOLUME_S:-110}" python3 benchmarks/volume_warm.py h200-mri-4x-sigma5-64px-aseqdip-auto --variants cold,warm \
  -- --task mri --acceleration 4 --sigma 5 --size 64 --stop auto --precision fp32 --seed 0 --device cuda >>"$log" 2>&1 \
  || echo "volume: exit $?" >>"$log"
cp benchmarks/results/volume-warm/h200-mri-4x-sigma5-64px-aseqdip-auto.* "$OUT/" 2>/dev/null
date -u >>"$log"
