#!/usr/bin/env bash
# The README's demo: sets up and builds kiln, compiles the shipped sample CNN
# (tests/models/demo_cnn.onnx: Conv+BatchNorm+Relu, a residual Add, MaxPool,
# GlobalAveragePool, Flatten, Gemm, Softmax on a 1x3x32x32 image) for the default device, runs
# it on a generated input and checks the result against a numpy reference.
#   bash scripts/demo.sh                 # default device (an OpenCL GPU, else any OpenCL device, else cpu)
#   KILN_DEVICE=cpu bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD=${KILN_BUILD_DIR:-build}
DEVICE=${KILN_DEVICE:-auto}
PY=/usr/bin/python3  # Debian's python3 with numpy and onnx (scripts/setup.sh)

echo "== setup and build"
bash scripts/setup.sh
bash scripts/build.sh >/dev/null
KILN=$ROOT/$BUILD/kiln
OUT=$ROOT/$BUILD/demo
rm -rf "$OUT" && mkdir -p "$OUT"

echo
echo "== devices"
"$KILN" devices

echo
echo "== kiln build tests/models/demo_cnn.onnx (device: $DEVICE)"
"$KILN" build tests/models/demo_cnn.onnx -o "$OUT/demo_cnn.plan" --device "$DEVICE"
"$KILN" inspect "$OUT/demo_cnn.plan" | sed -n '/^target device/p;/^weights/p;/^inputs/,/^$/p;/^nodes/,$p' \
  | grep -Ev '^ +(in|out|attrs):'

echo
echo "== input: a deterministic 1x3x32x32 float32 image"
"$PY" -c "
import numpy as np
x = np.random.default_rng(0).uniform(0, 1, (1, 3, 32, 32)).astype(np.float32)
np.save('$OUT/input.npy', x)
print('wrote $OUT/input.npy', x.shape, x.dtype)"

echo
echo "== kiln run (20 runs)"
"$KILN" run "$OUT/demo_cnn.plan" -i input="$OUT/input.npy" -o "$OUT/out" --device "$DEVICE" --repeat 20

echo
echo "== check against a numpy reference"
"$PY" scripts/demo_reference.py tests/models/demo_cnn.onnx "$OUT/input.npy" "$OUT/out/probs.npy"
