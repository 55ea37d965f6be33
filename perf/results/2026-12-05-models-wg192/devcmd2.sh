# Call 4: (1) every tensor-core variant test on the H100 with the cpu device's oneDNN path as the
# reference, guarded (KILN_CPU_GUARD=1: the AMX 1x1 int8 convolution is now skipped); (2) the
# unrolled epilogue with one division per column pair: ResNet-50 FP16/INT8 and BERT FP16 at batch
# 128, profiled; (3) BERT FP16 without the fused Attention node (KILN_FUSE_ATTENTION=0, the
# experiment's switch): QK^T and PV as tensor-core MatMuls around a Softmax.
source perf/device/env.sh; OUT=${OUT:-/tmp/kiln-out}; mkdir -p $OUT/r
KILN_CPU_GUARD=1 timeout 200 kiln_tests --gtest_filter='MmaVariant.*' > $OUT/r/mma_tests.txt 2>&1; echo "mma tests rc $?"
grep -E "^\[  (PASSED|FAILED) |^\[  FAILED  \]|past scratch|Failure|free\(\)" $OUT/r/mma_tests.txt | head -12
KILN_GPU_TESTS=None.none OUT=$OUT/r/a timeout 200 bash perf/device/gpu_bench.sh --parts resnet50,bert --batches 128 \
  --precisions fp16,int8 --profile 128 --duration 2 > $OUT/r/a.txt 2>&1; echo "bench a rc $?"
KILN_FUSE_ATTENTION=0 KILN_GPU_TESTS=None.none OUT=$OUT/r/b timeout 120 bash perf/device/gpu_bench.sh --parts bert --batches 128 \
  --precisions fp16 --profile 128 --duration 2 > $OUT/r/b.txt 2>&1; echo "bench b rc $?"
grep -h "| 128 |" $OUT/r/a/gpu-latest.md $OUT/r/b/gpu-latest.md
rm -rf $OUT/r/a/ptx $OUT/r/b/ptx; tar -C $OUT -czf $OUT/call4.tgz r && rm -rf $OUT/r
