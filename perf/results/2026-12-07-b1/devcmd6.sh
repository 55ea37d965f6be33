# Call 6: the final code (split_last in a one-element __local array, the counters allocated
# through ClRuntime::alloc's initial bytes) on the real tensor cores: the split and mma tests,
# ResNet-50 and BERT-base at batch 1 (torch eager FP16 in each step).
source perf/device/env.sh; source perf/device/call_steps.sh; call_begin b6
call_tests 200 'MmaVariant.Split*:MmaVariant.EveryWgmma*:MmaVariant.Int8MatMul*:MmaVariant.Fp8ConvMatMulMatchCpu'
call_step resnet50 fp16,int8 1 110
call_step bert fp16,int8 1 140
