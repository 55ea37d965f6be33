# Call 1 (ninth session): what the eighth session left untimed. FP8 layers writing half divide by
# kiln_div (BERT's residual FP8 GEMMs ran at half INT8's speed, dividing per element): the FP8
# tests on the real tensor cores, BERT-base INT8 and FP8 at batch 128 profiled; then ResNet-50
# INT8 with the output stage's rows in flight at the default, 8 and 4 (KILN_MMA_OUTPUT_ROWS).
source perf/device/env.sh; source perf/device/call_steps.sh; call_begin r1
call_tests 50 'MmaVariant.Fp8*:QuantizeFp8Ops.*:Fp16Fallback.*:FuseQuantized.*'
call_step bert int8,fp8 128 150 --profile 128
call_step resnet50 int8 128 110 --profile 128
STEP_NAME=resnet50-rows8 KILN_MMA_OUTPUT_ROWS=8 call_step resnet50 int8 128 110 --profile 128
STEP_NAME=resnet50-rows4 KILN_MMA_OUTPUT_ROWS=4 call_step resnet50 int8 128 110 --profile 128
