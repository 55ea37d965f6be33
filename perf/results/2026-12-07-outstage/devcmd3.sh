# Call 3: FP8 layers writing half divide by kiln_div too (BERT's residual FP8 GEMMs ran at half
# INT8's speed, dividing per element); the 8-bit output stages' rows in flight now that they do
# not branch (KILN_MMA_OUTPUT_ROWS=8 against the default: 8 behind a residual, else 2).
source perf/device/env.sh; source perf/device/call_steps.sh; call_begin r3
call_tests 60 'MmaVariant.Fp8*:QuantizeFp8Ops.*:Fp16Fallback.*:FuseQuantized.*'
call_step bert int8,fp8 128 150 --profile 128
call_step resnet50 int8 128 60 --profile 128
KILN_MMA_OUTPUT_ROWS=8 STEP_NAME=resnet50-int8-rows8 call_step resnet50 int8 128 60 --profile 128
