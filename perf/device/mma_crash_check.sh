#!/usr/bin/env bash
# A short call on the GPU machine (one run, ~1 minute): splits the heap corruption seen there in
# MmaVariant.EveryTileAndPackingMatchesCpuExactly (perf/results/2026-12-05-h200-pipelines.md)
# between the CPU reference side (oneDNN on that CPU; KILN_CPU_REFERENCE=1 swaps in the
# reference kernels) and the OpenCL side, and brings back the PTX NVIDIA's OpenCL compiler made
# of the tensor-core kernels (from the kernel cache) for reading here.
# There:  (carry .device) bash perf/device/mma_crash_check.sh
set -uo pipefail
source perf/device/env.sh
OUT=${OUT:-/tmp/kiln-out}
mkdir -p "$OUT"
lscpu | grep -E "^Model name" > "$OUT/cpu.txt"
grep -o -w -E "avx512_vnni|amx_int8|amx_tile|avx512f|avx2" /proc/cpuinfo | sort -u | tr '\n' ' ' >> "$OUT/cpu.txt"
for cpu_ref in 1 0; do
  KILN_CPU_REFERENCE=$cpu_ref timeout 90 kiln_tests --gtest_filter='MmaVariant.EveryTile*' >"$OUT/every_tile_cpuref$cpu_ref.txt" 2>&1
  echo "KILN_CPU_REFERENCE=$cpu_ref: rc $?"
  grep -E "^\[  (PASSED|FAILED)|free\(\)|Failure" "$OUT/every_tile_cpuref$cpu_ref.txt" | head -5
done
kiln_copy_mma_ptx "$OUT/ptx" 4
ls -la "$OUT/ptx"
