# Call 2 (same warm H100, right after call 1): every tensor-core test, then ResNet-50 FP8 and
# BERT-base INT8/FP8 at batch 128 and 1, profiled at 128.
source perf/device/env.sh; OUT=${OUT:-/tmp/kiln-out}; R=$OUT/r2; mkdir -p $R
KILN_CPU_GUARD=1 timeout 150 kiln_tests --gtest_filter='MmaVariant.*' > $R/tests.txt 2>&1
for part in resnet50 bert; do precs=fp8; [ $part = bert ] && precs=int8,fp8
  KILN_GPU_TESTS=None.none OUT=$R/$part timeout 170 bash perf/device/gpu_bench.sh --parts $part --batches 128,1 --precisions $precs --profile 128 --duration 2 > $R/${part}_run.txt 2>&1
  rm -rf $R/$part/ptx; done
tar -C $OUT -czf $OUT/call2.tgz r2
