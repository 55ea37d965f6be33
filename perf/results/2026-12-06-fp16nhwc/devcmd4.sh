# Call 4: the float output stage reads its residual from a tile in __local (MMA_RES_TILE for FP16/
# TF32, preferred on short reductions like the 8-bit stage's): the FP16 tensor-core tests, then
# ResNet-50 FP16 (profiled) and INT8, and BERT-base FP16, at batch 128.
source perf/device/env.sh; source perf/device/call_steps.sh; call_begin r4
call_tests 80 'MmaVariant.ChannelsLast*:MmaVariant.Fp16*:MmaVariant.Paired*:MmaVariant.Every*:ChannelsLastFloat.*'
call_step resnet50 fp16,int8 128 150 --profile 128
call_step bert fp16 128 90
