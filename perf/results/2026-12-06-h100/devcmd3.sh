source perf/device/env.sh; OUT=${OUT:-/tmp/kiln-out}; R=$OUT/r3; mkdir -p $R
KILN_CPU_GUARD=1 timeout 120 kiln_tests --gtest_filter='MmaVariant.*:-MmaVariant.EveryWgmma*:MmaVariant.EveryPipeline*' > $R/tests.txt 2>&1; echo "tests rc $?"; grep -E "^\[  (PASSED|FAILED) |Failure" $R/tests.txt | head
for part in resnet50 bert; do precs=fp16,int8,fp8; [ $part = bert ] && precs=fp16,int8
  KILN_GPU_TESTS=None.none OUT=$R/$part timeout 150 bash perf/device/gpu_bench.sh --parts $part --batches 128 --precisions $precs --duration 2 > $R/${part}_run.txt 2>&1
  echo "$part rc $?"; grep -h "| [0-9]* |" $R/$part/gpu-latest.md | head -8; rm -rf $R/$part/ptx; done
tar -C $OUT -czf $OUT/call3.tgz r3
