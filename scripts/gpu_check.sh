#!/usr/bin/env bash
# GPU checks: training and prediction speed on the repro-4 preset, and a few steps of
# 2-rank NCCL DDP training. Prints figures; writes only under a temp folder.
# Usage (from the repository root, after `make install TORCH=torch`): scripts/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
WORK=$(mktemp -d -t acseg-gpu-XXXXXX)
trap 'rm -rf "$WORK"' EXIT

"$BIN/python" - <<'PY'
import torch
if not torch.cuda.is_available():
    raise SystemExit("no CUDA device: nothing to check (the CPU suite covers the rest)")
print("torch", torch.__version__, "| devices:", torch.cuda.device_count(),
      "|", torch.cuda.get_device_name(0))
PY

echo "== training: repro-4, ours vs the reference formulation, GFLOP/s vs matmul"
"$BIN/acseg-core" bench --preset repro-4 --device cuda --steps 10 --warmup 2 --json

echo "== prediction: 6000² 4-band GeoTIFF, shipped read-out and filter"
"$BIN/acseg-core" bench --preset repro-4 --device cuda --predict-size 6000 \
    --predict-keep "$WORK" --json

echo "== DDP: 2 ranks over NCCL, a few steps"
mkdir -p "$WORK/tiles"
"$BIN/python" -c "
from tests.core.synthetic import make_regions_image
for seed in range(4):
    make_regions_image('$WORK/tiles/img%d.tif' % seed, size=(512, 512), bands=3, seed=seed)
"
GPUS=$("$BIN/python" -c "import torch; print(torch.cuda.device_count())")
if [ "$GPUS" -ge 2 ]; then
    /usr/bin/time -f "ddp wall %e s, peak RSS %M KB" "$BIN/acseg-core" train "$WORK/tiles" \
        --out "$WORK/run" --preset repro-4 --device cuda --nproc 2 --batch 16 --steps 20
    tail -n 3 "$WORK/run/train.jsonl"
else
    echo "one GPU: NCCL refuses two ranks on one device; DDP skipped (gloo DDP is in the CPU suite)"
    /usr/bin/time -f "single-GPU wall %e s, peak RSS %M KB" "$BIN/acseg-core" train "$WORK/tiles" \
        --out "$WORK/run" --preset repro-4 --device cuda --batch 16 --steps 20
fi
