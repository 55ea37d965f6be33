# Call 3: the 8-bit output stage copies its residual tile into __local first (MMA_RES_TILE):
# tests (INT8 mma exactness, channels-last, GELU/fused epilogues), the cpu INT8 discrepancy
# narrowed (the channels-last region test with oneDNN's float32 route for INT8, one thread, and
# without the in-place rule), then ResNet-50 INT8 (profiled) and BERT-base INT8 at batch 128.
source perf/device/env.sh; source perf/device/call_steps.sh; call_begin r3
call_tests 150 'MmaVariant.ChannelsLast*:MmaVariant.Int8*:MmaVariant.Gelu*:ChannelsLast.*:FuseQuantized.*'
for v in "KILN_CPU_INT8_VIA_F32=1" "OMP_NUM_THREADS=1" "KILN_NO_INPLACE=1" "KILN_CPU_THREADS=1"; do
  env $v timeout 60 kiln_tests --gtest_filter='ChannelsLast.Region*' > "$R/tests-$v.txt" 2>&1
  echo "$v: rc $?"; grep -E "differ" "$R/tests-$v.txt" | head -2
done
call_step resnet50 int8 128 120 --profile 128
call_step bert int8 128 130
