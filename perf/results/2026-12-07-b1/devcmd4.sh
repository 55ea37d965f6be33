# Call 4: split-K in one launch (the last work-group of a tile adds the partial sums up, counted
# by an atomic per tile) on the real tensor cores: its tests, then batch 1 of both models in
# FP16 / INT8 / FP8 (torch eager FP16 in each step).
source perf/device/env.sh; source perf/device/call_steps.sh; call_begin b4
call_tests 200 'MmaVariant.Split*:MmaVariant.Int8*:MmaVariant.Fp16ConvGemmMatMulMatchCpu:MmaVariant.Fp8ConvMatMulMatchCpu:MmaVariant.EveryWgmma*'
call_step resnet50 fp16,int8,fp8 1 150 --profile 1
call_step bert fp16,int8,fp8 1 200 --profile 1
