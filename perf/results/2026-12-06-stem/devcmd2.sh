# Call 2: the stem's SpaceToDepth writes NHWC with its added channels in one kernel (no Pad, no
# Transpose), MaxPool NHWC in 16-byte runs, no paired output columns behind a residual at K <= 64,
# the global average pool reading NHWC, and the FP8 output stage keeping its residual tile in
# __local: the tests on the real tensor cores, then ResNet-50 FP16/INT8/FP8 at batch 128
# profiled; the NCHW plan (the stem as it was) for its first nodes.
source perf/device/env.sh; source perf/device/call_steps.sh; call_begin r2
call_tests 120 'MmaVariant.SpaceToDepth*:MmaVariant.ChannelsLast*:MmaVariant.Paired*:MmaVariant.Fp8*:SpaceToDepthConv.*:ChannelsLast.*:ChannelsLastFloat.*'
call_step resnet50 fp16,int8,fp8 128 200 --profile 128
STEP_NAME=resnet50-fp16-nchw call_step resnet50 fp16 128 80 --profile 128 --build-flags "--layout nchw"
