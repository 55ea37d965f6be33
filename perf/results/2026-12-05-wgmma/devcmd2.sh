# The second call: the 128x192 wgmma tile (and, on an H200, every wgmma tile) timed against the
# candidates timed before (seed.cache), FP16/INT8/FP8 4096^3 GEMMs.
source perf/device/env.sh; mkdir -p $OUT; cp perf/results/2026-12-05-wgmma/seed.cache $OUT/tuning.cache
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader); echo "$gpu"
KILN_CPU_REFERENCE=1 timeout 60 kiln_tests --gtest_filter='MmaVariant.EveryWgmma*' > $OUT/wg_tests.txt 2>&1; echo "tests rc $?"
grep -E "^\[  (PASSED|FAILED) |Failure|Which is" $OUT/wg_tests.txt | head
KILN_GPU_TESTS=None.none timeout 300 bash perf/device/gpu_bench.sh --parts gemm --sizes 4096 --precisions fp16,int8,fp8 --tune > $OUT/gemm.txt 2>&1
grep "gemm {" $OUT/gemm.txt | cut -c1-330; rm -rf $OUT/ptx
