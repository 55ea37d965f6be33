# Sourced by a session's call script on the GPU machine (perf/results/<run>/devcmdN.sh), after
# env.sh: one folder of results per call, packed after every step so that a call cut off by its
# time limit still brings back what it finished.
#   source perf/device/env.sh; source perf/device/call_steps.sh; call_begin r6
#   call_tests 150 'MmaVariant.*:QuantizeOps.*'
#   call_step bert fp16,int8,fp8 128 170 --profile 128
# call_step runs gpu_bench.sh without its tests (KILN_GPU_TESTS=None.none); extra arguments go
# to perf/gpu_bench.py; environment set for one step (e.g. KILN_TUNING_SEED) passes through.

# call_begin NAME: results in $OUT/NAME, packed into $OUT/NAME.tgz.
call_begin() {
  OUT=${OUT:-/tmp/kiln-out}
  CALL=$1
  R=$OUT/$CALL
  mkdir -p "$R"
  SECONDS=0
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader >"$R/gpu.txt"
}

call_pack() { tar -C "$OUT" -czf "$OUT/$CALL.tgz" "$CALL"; }

# call_tests TIMEOUT FILTER: kiln_tests on the GPU (the cpu device's scratch guarded).
call_tests() {
  KILN_CPU_GUARD=1 timeout "$1" kiln_tests --gtest_filter="$2" >"$R/tests.txt" 2>&1
  echo "tests rc $? at ${SECONDS}s"
  grep -E "^\[  (PASSED|FAILED) |Failure|opencl vs" "$R/tests.txt" | head
  call_pack
}

# call_step PART PRECISIONS BATCH TIMEOUT [gpu_bench.py options...]: one benchmark step, in
# $R/PART-bBATCH (a name given by $STEP_NAME instead).
call_step() {
  local part=$1 precisions=$2 batch=$3 limit=$4
  shift 4
  local name=${STEP_NAME:-$part-b$batch}
  KILN_GPU_TESTS=None.none OUT="$R/$name" timeout "$limit" bash perf/device/gpu_bench.sh --parts "$part" \
    --batches "$batch" --precisions "$precisions" --duration 1 "$@" >"$R/$name.txt" 2>&1
  echo "$name rc $? at ${SECONDS}s"
  grep -h "| [0-9]* |" "$R/$name/gpu-latest.md" 2>/dev/null | head -8
  rm -rf "$R/$name/ptx"
  call_pack
}
