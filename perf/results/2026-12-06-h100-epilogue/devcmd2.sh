# Call 2: after the staged epilogue, the head-split Transposes absorbed by Attention and the FP16
# fallback of INT8/FP8 plans: a few tests on the GPU, then BERT-base (FP16/INT8/FP8) and ResNet-50
# (FP16/INT8) at batch 128 (int8/fp8 with --fallback-precision fp16), each also timed with
# --no-data-transfers, torch in the same runs; profiles at batch 128. (Trimmed to what the
# session's remaining device time allowed.)
source perf/device/env.sh; OUT=${OUT:-/tmp/kiln-out}; R=$OUT/r2; mkdir -p $R
pack() { tar -C $OUT -czf $OUT/call2.tgz r2; }
SECONDS=0
KILN_CPU_GUARD=1 timeout 40 kiln_tests --gtest_filter='MmaVariant.AttentionFp16MatchesCpu:AttentionOps.*:QuantizeOps.*:*Fallback*' > $R/tests.txt 2>&1
echo "tests rc $? at ${SECONDS}s"; grep -E "^\[  (PASSED|FAILED) |Failure" $R/tests.txt | head; pack
step() {  # step PART PRECISIONS TIMEOUT
  KILN_GPU_TESTS=None.none OUT=$R/$1 timeout $3 bash perf/device/gpu_bench.sh --parts $1 --batches 128 --precisions $2 --profile 128 --duration 1 > $R/$1.txt 2>&1
  echo "$1 rc $? at ${SECONDS}s"; grep -h "| [0-9]* |" $R/$1/gpu-latest.md | head -8; rm -rf $R/$1/ptx; pack
}
step bert fp16,int8,fp8 120
step resnet50 fp16,int8 95
