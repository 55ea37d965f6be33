# Call 1 of 2026-12-05 (evening): the AMX heap check (perf/device/amx_heap_check.sh), then
# ResNet-50 (or the model in $MODEL) at batch 128 and 1 in FP16/INT8/FP8 with the heuristic's
# tiles, profiled at batch 128, against torch. One tarball comes back (a device call returns a
# handful of files only).
OUT=${OUT:-/tmp/kiln-out}; MODEL=${MODEL:-resnet50}; mkdir -p $OUT/bench
if [ "${AMX:-1}" = 1 ]; then
  mkdir -p $OUT/amx; OUT=$OUT/amx timeout 170 bash perf/device/amx_heap_check.sh > /dev/null 2>&1; echo "amx check rc $?"
  cut -c1-300 $OUT/amx/amx.txt | head -60
fi
KILN_GPU_TESTS=None.none OUT=$OUT/bench timeout ${BENCH_S:-400} bash perf/device/gpu_bench.sh --parts $MODEL \
  --batches 128,1 --precisions ${PRECS:-fp16,int8,fp8} --profile 128 --duration 2 > $OUT/bench/run.txt 2>&1
echo "bench rc $?"; grep -E "\{'model'" $OUT/bench/run.txt | cut -c1-260
rm -rf $OUT/bench/ptx
tar -C $OUT -czf $OUT/${MODEL//,/-}.tgz $(ls $OUT | grep -v tgz) && rm -rf $OUT/amx $OUT/bench
