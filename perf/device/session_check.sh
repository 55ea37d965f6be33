#!/usr/bin/env bash
# One call on the GPU machine for everything measured there (see README.md here): precisions
# (FP32/FP16/INT8/FP8 plans next to torch, perf/precision_bench.py), dynamic shapes against
# onnxruntime, then perf/device/h100_check.sh (node tests, unit tests, demo, concurrency
# benchmarks). Writes logs and reports to $OUT.
set -uo pipefail
source perf/device/env.sh
OUT=${OUT:-/tmp/kiln-out}
mkdir -p "$OUT"
echo "== precisions (kiln FP32/FP16/INT8/FP8 vs torch)"
timeout 240 python3 perf/precision_bench.py "$OUT/precision.md" --device opencl --duration 2 2>&1 | tail -30
echo "== dynamic shapes vs onnxruntime (NVIDIA OpenCL)"
timeout 60 python3 tests/dynamic/dynamic_shapes_test.py "$(command -v kiln)" /tmp/dyn opencl 2>&1 | tail -5 | tee "$OUT/dynamic.txt"
bash perf/device/h100_check.sh
