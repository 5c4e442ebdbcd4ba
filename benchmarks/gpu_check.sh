#!/bin/bash
# The prepared GPU check of issue 26, one command on a lent GPU machine (see /work/.library/device there):
#   bash benchmarks/gpu_check.sh        (writes into $OUT, default benchmarks/results-gpu)
# It runs tests/test_cuda.py (engine, Triton kernel, time-series mode, adapters where installed), then the
# engine speeds with the fused torch step and the Triton kernel (engine only, cases a, c, e, f) and the
# training throughput on CUDA, each with the device's name and the torch/CUDA versions. About 6 minutes.
set -u
OUT=${OUT:-benchmarks/results-gpu}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH}
python3 - <<'PY' | tee "$OUT/device.txt"
import torch, triton
print(f"device: {torch.cuda.get_device_name()}; torch {torch.__version__}; CUDA {torch.version.cuda}; "
      f"triton {triton.__version__}")
PY
timeout 240 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py 2>&1 | tee "$OUT/test_cuda.txt"
timeout 240 python3 benchmarks/speed.py --device cuda --cases a,c,e,f --backends torch,triton --engine-only \
    --repeats 2 2>&1 | tee "$OUT/speed-engine.txt"
for batch in 256 2048; do
    timeout 60 python3 -m benchmarks.train_speed --device cuda --batch-size $batch --seconds 15 --corpus none
done 2>&1 | tee "$OUT/train-speed.txt"
