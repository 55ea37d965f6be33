# Call 1: the staged tensor-core epilogue (default) against the direct one (KILN_MMA_EPILOGUE=direct)
# on ResNet-50 and BERT-base at batch 128, torch timed in each run; tensor-core tests first.
# Every step tars what it wrote so far, so a cut-off call still brings its results home.
source perf/device/env.sh; OUT=${OUT:-/tmp/kiln-out}; R=$OUT/r1; mkdir -p $R
pack() { tar -C $OUT -czf $OUT/call1.tgz r1; }
SECONDS=0
KILN_CPU_GUARD=1 timeout 120 kiln_tests --gtest_filter='MmaVariant.*:-MmaVariant.EveryWgmma*:MmaVariant.EveryPipeline*' > $R/tests.txt 2>&1
echo "tests rc $? at ${SECONDS}s"; grep -E "^\[  (PASSED|FAILED) |Failure" $R/tests.txt | head; pack
step() {  # step EPILOGUE PART PRECISIONS [gpu_bench options]
  local ep=$1 part=$2 precs=$3; shift 3
  KILN_MMA_EPILOGUE=$ep KILN_GPU_TESTS=None.none OUT=$R/$part-$ep timeout 150 bash perf/device/gpu_bench.sh --parts $part --batches 128 --precisions $precs --duration 2 "$@" > $R/$part-$ep.txt 2>&1
  echo "$part $ep rc $? at ${SECONDS}s"; grep -h "| [0-9]* |" $R/$part-$ep/gpu-latest.md | head -8; rm -rf $R/$part-$ep/ptx; pack
}
step staged resnet50 fp16,int8 --profile 128
step direct resnet50 fp16,int8
step staged bert fp16,int8
step direct bert fp16
