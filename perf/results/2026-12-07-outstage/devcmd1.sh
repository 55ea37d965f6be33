# Call 1: last session's untimed items (SpaceToDepth NHWC vector stores, the 8-bit NHWC MaxPool on
# max(), an FP8 build's stem joining the region through its Cast / pool / QuantizeLinear, FP8
# encodings without a division per element): the tests on the real tensor cores, then ResNet-50
# FP16/INT8/FP8 at batch 128 profiled.
source perf/device/env.sh; source perf/device/call_steps.sh; call_begin r1
call_tests 80 'MmaVariant.SpaceToDepth*:MmaVariant.Fp8*:SpaceToDepthConv.*:ChannelsLast.Stem*'
call_step resnet50 fp16,int8,fp8 128 200 --profile 128
