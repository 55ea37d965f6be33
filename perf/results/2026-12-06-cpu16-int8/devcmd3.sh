# Call 3 (issue 11): the cpu device's INT8 routes on the GPU machine's 16-core host, which has
# VNNI/AMX (int8 accumulates exactly there, so oneDNN's int8 primitives run by default): the fast
# quantized tests on the default route and forced through the float32 route
# (KILN_CPU_INT8_VIA_F32=1, the route AVX2 hosts take), then ResNet-18 INT8/FP32 against
# onnxruntime at 16 threads, batch 1 and 32.
source perf/device/env.sh; OUT=${OUT:-/tmp/kiln-out}; R=$OUT/r3; mkdir -p $R
pack() { tar -C $OUT -czf $OUT/call3.tgz r3; }
SECONDS=0
{ lscpu | grep -E "^Model name|^CPU\(s\)|^Core"; lscpu | grep -o -E "avx512_vnni|amx_int8|avx_vnni" | sort -u; } > $R/cpu.txt
KILN_CPU_GUARD=1 timeout 120 kiln_tests --gtest_filter='CpuFastQuant*' > $R/tests_default.txt 2>&1
echo "default route rc $? at ${SECONDS}s"; grep -E "^\[  (PASSED|FAILED) |Failure" $R/tests_default.txt | head -5
KILN_CPU_INT8_VIA_F32=1 KILN_CPU_GUARD=1 timeout 120 kiln_tests --gtest_filter='CpuFastQuant*' > $R/tests_via_f32.txt 2>&1
echo "float32 route rc $? at ${SECONDS}s"; grep -E "^\[  (PASSED|FAILED) |Failure" $R/tests_via_f32.txt | head -5; pack
timeout 300 python3 perf/cpu_vs_ort.py $R/cpu16_resnet18.md --kiln $KILN_BUNDLE/bin/kiln --duration-s 2 --repeats 1 --models resnet18 --batches 1,32 > $R/cpu_vs_ort.log 2>&1
echo "cpu_vs_ort rc $? at ${SECONDS}s"; grep "|" $R/cpu16_resnet18.md | head -30; pack
