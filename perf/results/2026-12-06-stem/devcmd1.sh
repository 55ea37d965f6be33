# Call 1: the stem's space-to-depth form and MaxPool join the channels-last region
# (compiler/passes/space_to_depth_conv.h): its tests on the real tensor cores, then ResNet-50 FP16
# and INT8 at batch 128 profiled; FP16 again with the float stage's residual-tile preference
# (KILN_MMA_FLOAT_RESIDUAL_FIRST=1, untimed last session) and without paired output columns.
source perf/device/env.sh; source perf/device/call_steps.sh; call_begin r1
call_tests 90 'MmaVariant.SpaceToDepth*:MmaVariant.ChannelsLast*:SpaceToDepthConv.*:ChannelsLast.*:ChannelsLastFloat.*'
call_step resnet50 fp16,int8 128 150 --profile 128
KILN_MMA_FLOAT_RESIDUAL_FIRST=1 STEP_NAME=resnet50-fp16-resfirst call_step resnet50 fp16 128 80 --profile 128
KILN_MMA_PAIRED_COLUMNS=0 STEP_NAME=resnet50-fp16-unpaired call_step resnet50 fp16 128 80 --profile 128
