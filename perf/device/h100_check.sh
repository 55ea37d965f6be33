#!/usr/bin/env bash
# Everything kiln checks and measures on the GPU machine, in one call (see README.md here):
# devices, the ONNX node tests and unit tests on NVIDIA's OpenCL, the demo, and the benchmarks
# (kiln at concurrency 1 and 4 vs ONNX Runtime's CPU EP). Writes logs and the report to $OUT.
set -uo pipefail
source perf/device/env.sh
export KILN_TEST_MODELS_DIR=$PWD/tests/models
export KILN_TEST_PYTHON=python3  # numpy lives in that machine's own Python
OUT=${OUT:-/tmp/kiln-out}
mkdir -p "$OUT"
known=(); for f in tests/conformance/known_failures*.txt; do known+=(--known-failures "$f"); done
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
kiln devices | tee "$OUT/devices.txt"
echo "== conformance (NVIDIA OpenCL)"
kiln_conformance --device opencl --data "$KILN_BUNDLE/testdata/node" "${known[@]}" 2>&1 | tee "$OUT/conformance.txt" | tail -5
echo "== unit and op tests (NVIDIA OpenCL)"
kiln_tests 2>&1 | tee "$OUT/kiln_tests.txt" | grep -E "FAILED|PASSED|Failure" | head -40
echo "== demo"
python3 -c "import numpy as np; np.save('/tmp/in.npy', np.random.default_rng(0).uniform(0,1,(1,3,32,32)).astype(np.float32))"
kiln build tests/models/demo_cnn.onnx -o /tmp/demo.plan && kiln run /tmp/demo.plan -i input=/tmp/in.npy -o /tmp/demo_out --repeat 50
echo "== benchmarks"
KILN=kiln PY=python3 DURATION=${DURATION:-3} bash perf/run_perf.sh "$OUT/perf.md" opencl 2>&1 | tail -20
