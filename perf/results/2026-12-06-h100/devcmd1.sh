# One call for 2026-12-06's issue 8 measurements (each part time-boxed): the tensor-core tests that
# cover today's changes on the real tensor cores (the attention variant, convolutions with the
# output stage fixed at build time), then ResNet-50 FP16/INT8 and BERT-base FP16 at batch 128
# and 1 against torch in the same call, profiled at batch 128.
source perf/device/env.sh; OUT=${OUT:-/tmp/kiln-out}; R=$OUT/r; mkdir -p $R
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $R/gpu.txt
KILN_CPU_GUARD=1 timeout ${TEST_S:-100} kiln_tests --gtest_filter="${TESTS:-MmaVariant.Attention*:MmaVariant.Fp16Conv*:MmaVariant.Int8Conv*:MmaVariant.Fp8Conv*:AttentionOps.Float16*}" > $R/tests.txt 2>&1
echo "tests rc $?"; grep -E "^\[  (PASSED|FAILED) |Failure|trace:" $R/tests.txt | head -20
for part in resnet50 bert; do
  precs=fp16,int8; [ $part = bert ] && precs=fp16
  KILN_GPU_TESTS=None.none OUT=$R/$part timeout ${PART_S:-220} bash perf/device/gpu_bench.sh --parts $part --batches 128,1 --precisions $precs --profile 128 --duration 2 > $R/${part}_run.txt 2>&1
  echo "$part rc $?"; grep -h "| [0-9]* |" $R/$part/gpu-latest.md | head -8
  rm -rf $R/$part/ptx
done
grep -E "^/m/encoder/layer.0/attention/self/MatMul_1|layer1.0/conv3/Conv|layer1.0/downsample" $R/*/profiles.txt | head -8
tar -C $OUT -czf $OUT/call1.tgz r && rm -rf $R
