# Call 5: ResNet-50 FP16 at batch 128 built with --tune (every candidate of each distinct
# convolution timed; the H100 GEMM timings of perf/results/2026-12-05-wgmma seed the cache), then
# profiled: which tiles the 1x1 convolutions (K = 64..1024, N = 128 x H x W) want.
source perf/device/env.sh; OUT=${OUT:-/tmp/kiln-out}; mkdir -p $OUT/t
KILN_TUNING_SEED=perf/results/2026-12-05-wgmma/tuning.cache KILN_GPU_TESTS=None.none OUT=$OUT/t timeout 420 \
  bash perf/device/gpu_bench.sh --parts resnet50 --batches 128 --precisions fp16 --tune --profile 128 --duration 2 > $OUT/t/run.txt 2>&1
echo "tune rc $?"; grep -h "| 128 |" $OUT/t/gpu-latest.md
rm -rf $OUT/t/ptx; tar -C $OUT -czf $OUT/call5.tgz t && rm -rf $OUT/t
