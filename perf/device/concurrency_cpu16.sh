#!/usr/bin/env bash
# Issue 11 on the GPU machine's 16 cores: kiln's cpu device with two contexts on the same cores
# (kiln bench --concurrency 2) against one, ResNet-18 batch 1, at 16 and 8 threads per context and
# with libgomp's passive wait policy; the 2026-12-05 record had concurrency 2 at 0.4 inferences/s.
# There: (carry .device) bash perf/device/concurrency_cpu16.sh   -> $OUT/concurrency_cpu16.txt
set -uo pipefail
source perf/device/env.sh
W=$(mktemp -d)
python3 perf/models/make_resnet18.py "$W/r18.onnx" >/dev/null
python3 -c "import numpy as np; np.save('$W/x.npy', np.random.default_rng(0).uniform(-1, 1, (1, 3, 224, 224)).astype(np.float32))"
kiln build "$W/r18.onnx" -o "$W/r18.plan" --device cpu --shapes input=1x3x224x224 >/dev/null
bench() {  # LABEL ENV... -- ARGS
  local label=$1; shift
  local envs=(); while [ "$1" != -- ]; do envs+=("$1"); shift; done; shift
  env "${envs[@]}" timeout 60 kiln bench "$W/r18.plan" --device cpu -i input="$W/x.npy" --duration-s 2 --json "$W/b.json" "$@" >/dev/null 2>"$W/err"
  local rc=$?
  python3 -c "import json; d = json.load(open('$W/b.json')); print('%-44s %8.1f inferences/s  median %7.2f ms' % ('$label', d['throughput_per_s'], d['latency_ms']['median']))" 2>/dev/null ||
    echo "$label: failed (rc $rc): $(tail -1 "$W/err")"
  rm -f "$W/b.json"
}
{
  bench "threads 16, concurrency 1" X=1 -- --threads 16 --concurrency 1
  bench "threads 16, concurrency 2" X=1 -- --threads 16 --concurrency 2
  bench "threads 8, concurrency 1" X=1 -- --threads 8 --concurrency 1
  bench "threads 8, concurrency 2" X=1 -- --threads 8 --concurrency 2
  bench "threads 16, concurrency 2, OMP passive" OMP_WAIT_POLICY=passive -- --threads 16 --concurrency 2
  bench "threads 16, concurrency 1, OMP passive" OMP_WAIT_POLICY=passive -- --threads 16 --concurrency 1
  bench "default threads, concurrency 2" X=1 -- --concurrency 2
} | tee "$OUT/concurrency_cpu16.txt"
