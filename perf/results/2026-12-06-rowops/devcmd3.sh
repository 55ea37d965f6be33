# Call 3: how many output rows the tensor-core output stage keeps in flight (EPI_GROUP: 4 for
# FP16 and 2 for 8-bit so far), set for the experiment through KILN_EXPERIMENT_EPI_GROUP:
# ResNet-50 FP16/INT8 (profiled) at batch 128 with groups 4, 8, 16 (FP16) / 2, 4, 8 (INT8), and
# BERT-base INT8 at batch 128 with 2 and 8; torch in the same runs.
source perf/device/env.sh; OUT=${OUT:-/tmp/kiln-out}; R=$OUT/r3; mkdir -p $R
pack() { tar -C $OUT -czf $OUT/call3.tgz r3; }
SECONDS=0
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > $R/gpu.txt
step() {  # step NAME GROUP PART PRECISIONS TIMEOUT [more gpu_bench.py options]
  local name=$1
  KILN_EXPERIMENT_EPI_GROUP=$2 KILN_GPU_TESTS=None.none OUT=$R/$name timeout $5 bash perf/device/gpu_bench.sh --parts $3 --batches 128 --precisions $4 --duration 1 ${6:-} ${7:-} > $R/$name.txt 2>&1
  echo "$name rc $? at ${SECONDS}s"; grep -h "| [0-9]* |" $R/$name/gpu-latest.md | head -8; rm -rf $R/$name/ptx; pack
}
step resnet-fp16-g8 8 resnet50 fp16 80 --profile 128
step resnet-fp16-g16 16 resnet50 fp16 80 --profile 128
step resnet-int8-g4 4 resnet50 int8 80 --profile 128
step resnet-int8-g8 8 resnet50 int8 80 --profile 128
step bert-int8-g8 8 bert int8 90 --profile 128
step bert-fp16-g8 8 bert fp16 90
