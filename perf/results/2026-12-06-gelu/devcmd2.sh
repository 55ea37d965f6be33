# Call 2: after the LayerNorm slice kernel and the INT8/FP8 kernels writing/reading float16 in
# --fallback-precision fp16 plans (Fp16::kFloatIo): tests on the tensor cores, then BERT-base
# (FP16/INT8/FP8) at batch 128 (profiled) and batch 1, ResNet-50 (FP16/INT8) at batch 128,
# torch in the same runs, each also timed with --no-data-transfers.
source perf/device/env.sh; OUT=${OUT:-/tmp/kiln-out}; R=$OUT/r2; mkdir -p $R
pack() { tar -C $OUT -czf $OUT/call2.tgz r2; }
SECONDS=0
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > $R/gpu.txt
KILN_CPU_GUARD=1 timeout 60 kiln_tests --gtest_filter='MmaVariant.GeluEpiloguesMatchCpu:MmaVariant.Fp8ConvMatMulMatchCpu:Fp16Fallback*:NormalizationOps.LayerNorm*:NormalizationGroup.OpenCLMatchesCpuRandom' > $R/tests.txt 2>&1
echo "tests rc $? at ${SECONDS}s"; grep -E "^\[  (PASSED|FAILED) |Failure|opencl vs" $R/tests.txt | head; pack
step() {  # step PART PRECISIONS BATCH TIMEOUT [--profile B]
  KILN_GPU_TESTS=None.none OUT=$R/$1-b$3 timeout $4 bash perf/device/gpu_bench.sh --parts $1 --batches $3 --precisions $2 --duration 1 ${5:-} ${6:-} > $R/$1-b$3.txt 2>&1
  echo "$1 b$3 rc $? at ${SECONDS}s"; grep -h "| [0-9]* |" $R/$1-b$3/gpu-latest.md | head -8; rm -rf $R/$1-b$3/ptx; pack
}
step bert fp16,int8,fp8 128 160 --profile 128
step bert fp16,int8,fp8 1 130
step resnet50 fp16,int8 128 120
