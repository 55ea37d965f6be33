# Call 2: what limits the channels-last FP16 1x1 convolutions (every candidate tile timed by
# `kiln build --tune`, its tuning cache kept), and oneDNN's INT8 route on this host under
# oneDNN's ISA caps and kiln's thread counts (issue 11; every CpuFastQuant test, the
# convolution implementations oneDNN ran).
source perf/device/env.sh; source perf/device/call_steps.sh; call_begin r2
for v in "ONEDNN_MAX_CPU_ISA=AVX512_CORE_VNNI" "ONEDNN_MAX_CPU_ISA=AVX512_CORE_AMX" "KILN_CPU_THREADS=2" "KILN_CPU_THREADS=4"; do
  env $v ONEDNN_VERBOSE=1 timeout 90 kiln_tests --gtest_filter='CpuFastQuant.*' > "$R/q-$v.txt" 2>&1
  echo "$v: rc $?"; grep -E "^\[  (PASSED|FAILED) |^\[  FAILED  \] CpuFast" "$R/q-$v.txt" | head -6
  grep "^onednn_verbose,exec,cpu,convolution" "$R/q-$v.txt" | cut -d, -f5 | sort | uniq -c
done
call_pack
STEP_NAME=resnet50-fp16-tuned call_step resnet50 fp16 128 330 --tune
cp "$R/resnet50-fp16-tuned/tuning.cache" "$R/tuning.cache" 2>/dev/null; call_pack
