# Call 2: the tensor-core attention with its mask loads unconditional (clamped indices; one mask
# row loaded before the products where it serves every query row; mask and half-score rounding
# fixed at build time), and 8-bit convolutions keeping 4 output rows in flight (8 with a
# residual): the attention and 8-bit tests on the real tensor cores, BERT-base FP16/INT8/FP8 and
# ResNet-50 INT8 at batch 128 profiled, then BERT INT8 with 4 rows in every output stage.
source perf/device/env.sh; source perf/device/call_steps.sh; call_begin r2
call_tests 120 'MmaVariant.Attention*:AttentionOps.*:MmaVariant.*Int8*:MmaVariant.*Residual*:MmaVariant.ChannelsLast*:FuseQuantized.*'
call_step bert fp16,int8,fp8 128 200 --profile 128
call_step resnet50 int8 128 100 --profile 128
STEP_NAME=bert-rows4 KILN_MMA_OUTPUT_ROWS=4 call_step bert int8 128 100 --profile 128
