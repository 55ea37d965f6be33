# Call 4: the output stage's rows in flight chosen per problem (mma_gemm.cpp's
# output_rows_in_flight, from call 3's timings): the tensor-core tests (FP16/TF32 pipelines,
# every wgmma tile, INT8 exactness, FP8, GELU epilogues), then BERT-base (profiled) and
# ResNet-50 at batch 128 in FP16/INT8/FP8, and both at batch 1 (FP16/INT8); torch in the same runs.
source perf/device/env.sh; OUT=${OUT:-/tmp/kiln-out}; R=$OUT/r4; mkdir -p $R
pack() { tar -C $OUT -czf $OUT/call4.tgz r4; }
SECONDS=0
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > $R/gpu.txt
KILN_CPU_GUARD=1 timeout 130 kiln_tests --gtest_filter='MmaVariant.Fp16ConvGemmMatMulMatchCpu:MmaVariant.EveryWgmmaTileMatchesCpu:MmaVariant.Int8*:MmaVariant.Fp8ConvMatMulMatchCpu:MmaVariant.GeluEpiloguesMatchCpu:MmaVariant.Tf32*:Fp16Fallback*' > $R/tests.txt 2>&1
echo "tests rc $? at ${SECONDS}s"; grep -E "^\[  (PASSED|FAILED) |Failure|opencl vs" $R/tests.txt | head; pack
step() {  # step PART PRECISIONS BATCH TIMEOUT [more gpu_bench.py options]
  local name=$1-b$3
  KILN_GPU_TESTS=None.none OUT=$R/$name timeout $4 bash perf/device/gpu_bench.sh --parts $1 --batches $3 --precisions $2 --duration 1 ${5:-} ${6:-} > $R/$name.txt 2>&1
  echo "$name rc $? at ${SECONDS}s"; grep -h "| [0-9]* |" $R/$name/gpu-latest.md | head -8; rm -rf $R/$name/ptx; pack
}
step bert fp16,int8,fp8 128 170 --profile 128
step resnet50 fp16,int8,fp8 128 110
step resnet50 fp16,int8 1 50
step bert fp16,int8 1 100
