# Call 1: LayerNorm in whole warps with 8-value accesses (rownorm_x8), QuantizeLinear eight values
# a work-item (quantize_linear_x8), attention with two K/V stages and paired half stores: the
# changed kernels' tests on the GPU, then BERT-base (FP16/INT8/FP8) and ResNet-50 (FP16/INT8) at
# batch 128 (BERT profiled), torch in the same runs; last, BERT FP16 built with --tune seeded
# with the last session's cache, to time the attention's register caps (regs=168/128).
source perf/device/env.sh; OUT=${OUT:-/tmp/kiln-out}; R=$OUT/r1; mkdir -p $R
pack() { tar -C $OUT -czf $OUT/call1.tgz r1; }
SECONDS=0
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > $R/gpu.txt
kiln devices > $R/devices.txt 2>&1; clinfo 2>/dev/null | grep -i -m3 "nv_compiler" >> $R/devices.txt
KILN_CPU_GUARD=1 timeout 90 kiln_tests --gtest_filter='MmaVariant.AttentionFp16MatchesCpu:AttentionOps.*:NormalizationOps.LayerNorm*:QuantizeOps.*:Fp16Ops.SoftmaxAndNormalizations:Fp16Fallback*' > $R/tests.txt 2>&1
echo "tests rc $? at ${SECONDS}s"; grep -E "^\[  (PASSED|FAILED) |Failure|opencl vs" $R/tests.txt | head; pack
step() {  # step PART PRECISIONS BATCH TIMEOUT [more gpu_bench.py options]
  local name=$1-b$3$7
  KILN_GPU_TESTS=None.none OUT=$R/$name timeout $4 bash perf/device/gpu_bench.sh --parts $1 --batches $3 --precisions $2 --duration 1 ${5:-} ${6:-} > $R/$name.txt 2>&1
  echo "$name rc $? at ${SECONDS}s"; grep -h "| [0-9]* |" $R/$name/gpu-latest.md | head -8; rm -rf $R/$name/ptx; pack
}
step bert fp16,int8,fp8 128 170 --profile 128
step resnet50 fp16,int8 128 110
KILN_TUNING_SEED=perf/results/2026-12-06-gelu/call4-tuning.cache step bert fp16 128 200 --tune "" -tuned
grep -h "Attention\|attention" $R/bert-b128-tuned/bench.log | grep -i tune | head -5
