# Call 4 (the session's last code; trimmed to the device time left): the channels-last and INT8
# tensor-core tests and the cpu INT8 chain test (with oneDNN's implementations named), then
# ResNet-50 at batch 128 in FP16/INT8/FP8; torch in the same run.
source perf/device/env.sh; source perf/device/call_steps.sh; call_begin r4
call_tests 100 'MmaVariant.ChannelsLast*:MmaVariant.Int8*:ChannelsLast.*:CpuFastQuant.*'
# Which oneDNN implementations the cpu INT8 chain test runs on this host (it differed from the
# reference in calls 1-3 with several threads).
ONEDNN_VERBOSE=1 timeout 30 kiln_tests --gtest_filter='CpuFastQuant.ConvChain*' 2>&1 | grep -E "exec|FAILED|PASSED|differ" | cut -c1-300 | head -60 > $R/onednn-verbose.txt
grep -E "differ|PASSED|FAILED" $R/onednn-verbose.txt | head -4; call_pack
call_step resnet50 fp16,int8,fp8 128 130
