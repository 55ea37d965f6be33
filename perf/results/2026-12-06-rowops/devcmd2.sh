# Call 2: requantization rounding without a division per element (kernels/rint_div.cl), FP8
# conversions as cvt.rn.satfinite on NVIDIA, the attention output's Transpose absorbed in INT8/FP8
# plans (the QuantizeLinear moved after it): integer/FP8 tests on the tensor cores (exact against
# the CPU), then BERT-base (FP16/INT8/FP8) at batch 128 (profiled) and ResNet-50 (FP16/INT8/FP8)
# at batch 128, torch in the same runs.
source perf/device/env.sh; OUT=${OUT:-/tmp/kiln-out}; R=$OUT/r2; mkdir -p $R
pack() { tar -C $OUT -czf $OUT/call2.tgz r2; }
SECONDS=0
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > $R/gpu.txt
KILN_CPU_GUARD=1 timeout 150 kiln_tests --gtest_filter='QuantizeOps.*:MmaVariant.Int8*:MmaVariant.GeluEpiloguesMatchCpu:MmaVariant.Fp8ConvMatMulMatchCpu:MmaVariant.EveryWgmmaTileMatchesCpu:Fp16Fallback*:NormalizationOps.LayerNorm*' > $R/tests.txt 2>&1
echo "tests rc $? at ${SECONDS}s"; grep -E "^\[  (PASSED|FAILED) |Failure|opencl vs" $R/tests.txt | head; pack
step() {  # step PART PRECISIONS BATCH TIMEOUT [more gpu_bench.py options]
  local name=$1-b$3
  KILN_GPU_TESTS=None.none OUT=$R/$name timeout $4 bash perf/device/gpu_bench.sh --parts $1 --batches $3 --precisions $2 --duration 1 ${5:-} ${6:-} > $R/$name.txt 2>&1
  echo "$name rc $? at ${SECONDS}s"; grep -h "| [0-9]* |" $R/$name/gpu-latest.md | head -8; rm -rf $R/$name/ptx; pack
}
step bert fp16,int8,fp8 128 170 --profile 128
step resnet50 fp16,int8,fp8 128 200 --profile 128
