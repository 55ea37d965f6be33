#!/usr/bin/env bash
# One call on the GPU machine for issue 8's numbers: the tensor-core variant's tests on the real
# tensor cores (tests/ops/mma_test.cpp, no emulation), then perf/gpu_bench.py (GEMM sweep and
# ResNet-50 / BERT-base per precision against torch in the same run; INT8/FP8 plans with
# --fallback-precision fp16, see gpu_bench.py). Results go to $OUT
# (gpu-latest.json, gpu-latest.md, logs, ptx/: the PTX of the last tensor-core programs built);
# copy them to perf/results/ afterwards.
# Here:   bash scripts/build.sh && KILN_BUNDLE_TESTDATA=0 bash perf/device/bundle.sh
# There:  (carry .device) bash perf/device/gpu_bench.sh [gpu_bench.py options]
# KILN_TUNING_SEED=FILE (with --tune): start from an earlier tuning cache (e.g. a committed
# perf/results/*/tuning.cache), so only candidates it lacks for this GPU and driver are timed.
set -uo pipefail
source perf/device/env.sh
export KILN_TEST_MODELS_DIR=$PWD/tests/models
export KILN_TEST_PYTHON=python3
OUT=${OUT:-/tmp/kiln-out}
mkdir -p "$OUT"
if [ -n "${KILN_TUNING_SEED:-}" ]; then cp "$KILN_TUNING_SEED" "$OUT/tuning.cache"; fi
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
kiln devices | head -4
echo "== tensor-core variant tests (mma.sync and wgmma through NVIDIA OpenCL)"
# The cpu device's oneDNN path computes the expected values, its scratch buffers guarded
# (oneDNN 2.6's AMX 1x1 int8 convolution wrote past them there: perf/device/amx_heap_check.sh).
KILN_CPU_GUARD=1 timeout "${KILN_GPU_TEST_TIMEOUT:-300}" kiln_tests --gtest_filter="${KILN_GPU_TESTS:-MmaVariant.*}" >"$OUT/mma_tests.txt" 2>&1
grep -E "^\[  (PASSED|FAILED) |Failure|Actual|trace:|mma_test" "$OUT/mma_tests.txt" | head -40
echo "== benchmarks"
python3 perf/gpu_bench.py "$OUT" "$@" 2>&1 | tee "$OUT/bench.log" | grep -vE "^\[ *[0-9.]+s\] (gemm|\{)" | tail -60
# The PTX of the last tensor-core programs built (the benchmarks'), for reading here.
kiln_copy_mma_ptx "$OUT/ptx" "${KILN_GPU_PTX_COPIES:-4}"
