# Call 5: the session's last commit (shared headers moved, the 128x192 tile's cap on rows in
# flight) on the GPU: the tensor-core, attention, quantize, normalization and FP16-fallback tests,
# then BERT-base INT8 at batch 128 as a check against call 4.
source perf/device/env.sh; OUT=${OUT:-/tmp/kiln-out}; R=$OUT/r5; mkdir -p $R
SECONDS=0
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > $R/gpu.txt
KILN_CPU_GUARD=1 timeout 300 kiln_tests --gtest_filter='MmaVariant.*:QuantizeOps.*:AttentionOps.*:NormalizationOps.*:Fp16Ops.*:Fp16Fallback*' > $R/tests.txt 2>&1
echo "tests rc $? at ${SECONDS}s"; grep -E "^\[  (PASSED|FAILED) |Failure" $R/tests.txt | head
KILN_GPU_TESTS=None.none OUT=$R/bert-b128 timeout 120 bash perf/device/gpu_bench.sh --parts bert --batches 128 --precisions int8 --duration 1 > $R/bert-b128.txt 2>&1
echo "bert rc $? at ${SECONDS}s"; grep -h "| [0-9]* |" $R/bert-b128/gpu-latest.md | head -3; rm -rf $R/bert-b128/ptx
tar -C $OUT -czf $OUT/call5.tgz r5
