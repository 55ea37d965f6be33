#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz) with clang, ASan and UBSan into build-fuzz/, seeds
# each from the test models, plans built from them, and the committed inputs of
# tests/fuzz/regressions/<target>/, and runs every target for SECONDS (default 60) one after
# the other. Exits non-zero when any target finds a crash, a leak, a timeout or an OOM; the
# input that did it is left in build-fuzz/fuzz-work/<target>/artifacts/ (copy it into
# tests/fuzz/regressions/<target>/ once fixed, so it stays a regression test).
#   bash scripts/fuzz.sh [SECONDS] [TARGET...]     targets: onnx_import plan npy npz calib_cache
# Environment: KILN_FUZZ_BUILD_DIR (default build-fuzz), KILN_FUZZ_JOBS (parallel targets, 1),
# KILN_FUZZ_ARGS (extra libFuzzer flags), KILN_FUZZ_NO_BUILD=1 (reuse the existing build).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECONDS_PER_TARGET=${1:-60}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(onnx_import plan npy npz calib_cache)
BUILD=${KILN_FUZZ_BUILD_DIR:-build-fuzz}
WORK=$BUILD/fuzz-work
JOBS=${KILN_FUZZ_JOBS:-1}

command -v clang++ >/dev/null || { echo "fuzz: clang++ not found (bash scripts/setup.sh installs it)" >&2; exit 1; }
if [ "${KILN_FUZZ_NO_BUILD:-0}" != 1 ]; then
  launcher=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
  CC=clang CXX=clang++ cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKILN_SANITIZE=address,undefined \
    -DKILN_FUZZ=ON "${launcher[@]}" >/dev/null
  cmake --build "$BUILD" -j"$(nproc)" --target kiln "${TARGETS[@]/#/fuzz_}"
fi

# ---- seed corpora (regenerated each time: plans follow the current format version)
seed() {
  local t=$1 dir=$WORK/$1/seeds
  rm -rf "$dir"
  mkdir -p "$dir" "$WORK/$t/corpus" "$WORK/$t/artifacts"
  cp "$ROOT"/tests/fuzz/regressions/"$t"/* "$dir"/ 2>/dev/null || true
  case $t in
    onnx_import)
      cp "$ROOT"/tests/models/*.onnx "$dir"/
      local i=0
      for m in /usr/share/libonnx-testdata/data/node/*/model.onnx; do
        [ -f "$m" ] && cp "$m" "$dir/node_$((i++)).onnx"
      done
      ;;
    plan)
      local i=0
      for m in "$ROOT"/tests/models/*.onnx /usr/share/libonnx-testdata/data/node/test_{conv,maxpool,averagepool,reduce_sum,slice,gather,resize,pad,concat,split,transpose,gemm,matmul,softmax,layer_norm,batchnorm,qlinear,dequantize,quantize,tile,expand}*/model.onnx; do
        [ -f "$m" ] || continue
        ASAN_OPTIONS=detect_leaks=0 timeout 60 "$BUILD/kiln" build "$m" -o "$dir/p$i.plan" --device cpu >/dev/null 2>&1 || true
        i=$((i + 1))
      done
      ;;
  esac
}

run_target() {
  local t=$1 log=$WORK/$1/fuzz.log
  echo "== fuzz_$t: ${SECONDS_PER_TARGET}s"
  local rc=0
  # A failure (crash, leak, -timeout, -rss_limit_mb OOM) makes libFuzzer exit non-zero and write
  # the input to artifacts/.
  (cd "$WORK/$t" && UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1:intercept_tls_get_addr=0 \
    "$ROOT/$BUILD/tests/fuzz/fuzz_$t" corpus seeds -max_total_time="$SECONDS_PER_TARGET" -timeout=20 -rss_limit_mb=2048 \
    -malloc_limit_mb=2048 -max_len=262144 -use_value_profile=1 -print_final_stats=1 -artifact_prefix=artifacts/ \
    ${KILN_FUZZ_ARGS:-}) >"$log" 2>&1 || rc=$?
  local execs
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  echo "fuzz_$t: ${execs:-?} executions, exit code $rc (log: $log)"
  if [ "$rc" -ne 0 ]; then
    grep -E 'ERROR|SUMMARY|Test unit written' "$log" | head -5
    return 1
  fi
}

for t in "${TARGETS[@]}"; do seed "$t"; done
failed=0
if [ "$JOBS" -gt 1 ]; then
  pids=()
  for t in "${TARGETS[@]}"; do run_target "$t" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p" || failed=1; done
else
  for t in "${TARGETS[@]}"; do run_target "$t" || failed=1; done
fi
exit $failed
