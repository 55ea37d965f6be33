#!/usr/bin/env bash
# Where the time of one inference goes on the GPU machine, and what concurrency buys: for each
# precision of the benchmark ResNet, kiln profile (per-kernel device time) and kiln bench at
# concurrency 1 and 4 (JSON in $OUT). Run after `source perf/device/env.sh`.
set -uo pipefail
OUT=${OUT:-/tmp/kiln-out}
R=$PWD
mkdir -p "$OUT" /tmp/conc && cd /tmp/conc
python3 "$R/perf/models/make_perf_models.py" m >/dev/null
python3 -c "
import numpy as np, os
r = np.random.default_rng(0); os.makedirs('calib', exist_ok=True)
for i in range(16): np.savez('calib/%d.npz' % i, input=r.uniform(-1, 1, (1, 3, 64, 64)).astype(np.float32))"
for p in fp32 fp16 int8 fp8; do
  extra=(); [ "$p" = int8 ] || [ "$p" = fp8 ] && extra=(--calib calib)
  kiln build m/resnet_mini.onnx -o $p.plan --precision $p "${extra[@]}" | tail -1
  kiln profile $p.plan --iterations 50 > "$OUT/resnet_mini_${p}_profile.txt" 2>&1; tail -1 "$OUT/resnet_mini_${p}_profile.txt"
  for c in 1 4; do
    kiln bench $p.plan --duration-s 2 --concurrency $c --json "$OUT/resnet_mini_${p}_c$c.json" | grep -E "throughput|latency ms" | tr '\n' ' '
    echo " [$p c=$c]"
  done
done
