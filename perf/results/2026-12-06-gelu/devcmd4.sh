# Call 4: what --tune gains on BERT-base batch 128 now (heuristic tiles in calls 1-2): FP16 and
# INT8 plans built with --tune (one tuning cache, timed on the device), torch in the same run.
source perf/device/env.sh; OUT=${OUT:-/tmp/kiln-out}; R=$OUT/r4; mkdir -p $R
pack() { tar -C $OUT -czf $OUT/call4.tgz r4; }
SECONDS=0
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > $R/gpu.txt
KILN_GPU_TESTS=None.none OUT=$R/bert-tuned timeout 520 bash perf/device/gpu_bench.sh --parts bert --batches 128 --precisions fp16,int8 --duration 1 --tune > $R/bert-tuned.txt 2>&1
echo "bert tuned rc $? at ${SECONDS}s"; grep -h "| [0-9]* |" $R/bert-tuned/gpu-latest.md | head -8; rm -rf $R/bert-tuned/ptx; tail -5 $R/bert-tuned/bench.log; pack
