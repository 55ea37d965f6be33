# Call 4: the float output stage reads its residual from a tile in __local (MMA_RES_TILE for FP16/
# TF32, preferred on short reductions like the 8-bit stage's): the FP16 channels-last tensor-core
# tests, then ResNet-50 FP16 at batch 128, profiled, and without the paired output columns
# (KILN_MMA_PAIRED_COLUMNS=0): what device time was left.
source perf/device/env.sh; source perf/device/call_steps.sh; call_begin r4
call_tests 40 'MmaVariant.ChannelsLastFp16*:MmaVariant.ChannelsLastConvs*:MmaVariant.Paired*'
call_step resnet50 fp16 128 90 --profile 128
KILN_MMA_PAIRED_COLUMNS=0 STEP_NAME=resnet50-fp16-unpaired call_step resnet50 fp16 128 60
