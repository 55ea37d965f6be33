# Call 3: FP8 layers writing half divide by kiln_div too (BERT's residual FP8 GEMMs ran at half
# INT8's speed, dividing per element): the FP8 tests on the real tensor cores, then BERT-base
# INT8 and FP8 at batch 128 profiled.
source perf/device/env.sh; source perf/device/call_steps.sh; call_begin r3
call_tests 50 'MmaVariant.Fp8*:QuantizeFp8Ops.*:Fp16Fallback.*:FuseQuantized.*'
call_step bert int8,fp8 128 150 --profile 128
