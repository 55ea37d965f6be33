# Call 1: FP16 convolutions channels-last (the FP16 tensor cores' MMA_AMODE 1): tests on the real
# tensor cores (FP16 and 8-bit channels-last, FP16 conv/GEMM), oneDNN's INT8 route on this host
# named (ONEDNN_VERBOSE, issue 11), then ResNet-50 FP16 at batch 128 NCHW (--layout nchw, the
# baseline) and channels-last (auto, profiled), and INT8, with torch eager FP16 in every step.
source perf/device/env.sh; source perf/device/call_steps.sh; call_begin r1
call_tests 150 'MmaVariant.ChannelsLast*:MmaVariant.Fp16*:ChannelsLastFloat.*:ChannelsLast.*:Fp16Fallback.*'
ONEDNN_VERBOSE=1 timeout 60 kiln_tests --gtest_filter='CpuFastQuant.ConvChainWithResidualMatchesReference' > "$R/onednn-verbose.txt" 2>&1
echo "onednn verbose rc $?"; grep -E "^onednn_verbose,exec" "$R/onednn-verbose.txt" | cut -d, -f3-6 | sort | uniq -c | head -20
KILN_CPU_THREADS=1 ONEDNN_VERBOSE=1 timeout 60 kiln_tests --gtest_filter='CpuFastQuant.ConvChainWithResidualMatchesReference' > "$R/onednn-verbose-t1.txt" 2>&1
echo "one thread rc $?"; call_pack
STEP_NAME=resnet50-fp16-nchw call_step resnet50 fp16 128 110 --build-flags "--layout nchw"
call_step resnet50 fp16,int8 128 170 --profile 128
