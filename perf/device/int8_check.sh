#!/usr/bin/env bash
# INT8 on the GPU machine: calibrate the benchmark ResNet on random samples, check it against
# FP32 with kiln compare, and time FP32 vs INT8 plans (kiln bench, concurrency 1).
set -uo pipefail
source perf/device/env.sh
OUT=${OUT:-/tmp/kiln-out}
mkdir -p "$OUT" /tmp/i8 && cd /tmp/i8
python3 "$OLDPWD/perf/models/make_perf_models.py" m >/dev/null
python3 -c "
import numpy as np, os
r = np.random.default_rng(0); os.makedirs('calib', exist_ok=True)
for i in range(16): np.savez('calib/%d.npz' % i, input=r.uniform(-1, 1, (1, 3, 64, 64)).astype(np.float32))
np.save('x.npy', r.uniform(-1, 1, (1, 3, 64, 64)).astype(np.float32))"
kiln build m/resnet_mini.onnx -o fp32.plan | tail -1
kiln build m/resnet_mini.onnx -o int8.plan --precision int8 --calib calib | tail -1
ls -l fp32.plan int8.plan | awk '{print $5, $9}'
kiln compare int8.plan --reference m/resnet_mini.onnx -i input=x.npy
for p in fp32 int8; do kiln bench $p.plan --duration-s 3 --json "$OUT/resnet_mini_$p.json" | grep -E "bench|throughput|latency"; done
