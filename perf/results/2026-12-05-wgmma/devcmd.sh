source perf/device/env.sh; mkdir -p $OUT/gemm $OUT/models; cp perf/results/2026-12-05-wgmma/seed.cache $OUT/gemm/tuning.cache
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader); echo "$gpu"
KILN_CPU_REFERENCE=1 timeout 150 kiln_tests --gtest_filter='MmaVariant.EveryWgmma*:MmaVariant.Fp8*:MmaVariant.Int8Conv*:MmaVariant.Fp16*' > $OUT/wg_tests.txt 2>&1; echo "tests rc $?"
grep -E "^\[  (PASSED|FAILED) |^\[       OK|Failure|Which is|trace:" $OUT/wg_tests.txt | head -30
case "$gpu" in *H200*) prec=int8,fp8;; *) prec=int8;; esac
OUT=$OUT/gemm KILN_GPU_TESTS=None.none timeout 200 bash perf/device/gpu_bench.sh --parts gemm --sizes 4096 --precisions $prec --tune 2>&1 | grep "gemm {" | cut -c1-300
OUT=$OUT/models KILN_GPU_TESTS=None.none timeout 200 bash perf/device/gpu_bench.sh --parts resnet50,bert --batches 128 --precisions fp16,int8 2>&1 | grep -E "model|\{" | cut -c1-300 | tail -12
