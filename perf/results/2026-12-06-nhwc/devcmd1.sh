# Call 1: channels-last INT8 convolutions (compiler/passes/channels_last.cpp, MMA_AMODE 1): the
# tensor-core tests (the new channels-last region against NCHW bit for bit, INT8 exactness),
# then ResNet-50 INT8 at batch 128 with the default layout (auto: NHWC here, profiled) and with
# --layout nchw (the previous plans), torch eager FP16 in the same steps.
source perf/device/env.sh; source perf/device/call_steps.sh; call_begin r1
call_tests 150 'MmaVariant.ChannelsLast*:MmaVariant.Int8*:ChannelsLast.*'
call_step resnet50 int8 128 140 --profile 128
STEP_NAME=resnet50-nchw-b128 call_step resnet50 int8 128 110 --build-flags "--layout nchw"
