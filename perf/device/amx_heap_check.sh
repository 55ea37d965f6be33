#!/usr/bin/env bash
# A short call on the GPU machine (~2 minutes): finds the write past a buffer that corrupts the
# host heap in the cpu device's int8 path on that AMX host (issue 11,
# perf/results/2026-12-05-h200-pipelines.md). AddressSanitizer cannot see it (oneDNN's JIT code
# is not instrumented), so each run guards kiln's scratch buffers (KILN_CPU_GUARD=1: a failing
# node is named with the slot it overran) and logs oneDNN's primitives (ONEDNN_VERBOSE=1); the
# same tests run again without AMX (ONEDNN_MAX_CPU_ISA) and on one thread, to split the cause.
# There:  (carry .device) bash perf/device/amx_heap_check.sh
set -uo pipefail
source perf/device/env.sh
OUT=${OUT:-/tmp/kiln-out}
mkdir -p "$OUT"
S=$OUT/amx.txt
{ lscpu | grep -E "^Model name"; grep -o -w -E "avx512_vnni|amx_int8|amx_tile|amx_bf16" /proc/cpuinfo | sort -u | tr '\n' ' '; echo; } > "$S"
MMA='MmaVariant.EveryTileAndPacking*'
CPU='CpuFastQuant.*:CpuFastLinear.*:CpuFastOps.*'
run() {  # name, filter, env...
  local name=$1 filter=$2; shift 2
  env "$@" stdbuf -oL -eL timeout 60 kiln_tests --gtest_filter="$filter" > "$OUT/$name.log" 2>&1
  local rc=$?
  echo "== $name ($*): rc $rc" >> "$S"
  grep -E "^\[  (PASSED|FAILED) |^\[  FAILED  \]|past scratch|free\(\)|corruption|Failure" "$OUT/$name.log" | head -12 >> "$S"
}
run mma_guard "$MMA" KILN_CPU_GUARD=1 ONEDNN_VERBOSE=1
run mma_no_amx "$MMA" ONEDNN_MAX_CPU_ISA=AVX512_CORE_VNNI
run mma_1thread "$MMA" KILN_CPU_THREADS=1
run cpu_guard "$CPU" KILN_CPU_GUARD=1 ONEDNN_VERBOSE=1
# The primitives oneDNN ran last before each guarded run stopped, and every distinct int8 one.
for f in mma_guard cpu_guard; do
  echo "== $f: last oneDNN primitives" >> "$S"
  grep "onednn_verbose,exec" "$OUT/$f.log" | tail -6 | cut -c1-400 >> "$S"
  echo "== $f: distinct int8 implementations" >> "$S"
  grep "onednn_verbose,exec" "$OUT/$f.log" | grep -E "src_(u8|s8)" | cut -d, -f4-5 | sort | uniq -c >> "$S"
done
# Keep only the small summaries and the guarded logs' tails.
for f in "$OUT"/*.log; do tail -c 200000 "$f" > "$f.tail" && mv "$f.tail" "$f"; done
cat "$S"
