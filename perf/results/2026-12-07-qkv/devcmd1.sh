# Call 1: Q, K and V projections packed into one product (compiler/passes/pack_qkv.cpp; BERT-base
# 121 nodes instead of 169, two launches fewer per layer): the tests on the real tensor cores,
# BERT-base at batch 1 in FP16/INT8/FP8 and at batch 128 in INT8 (torch eager FP16 in each step).
source perf/device/env.sh; source perf/device/call_steps.sh; call_begin k1
call_tests 150 'MmaVariant.PackedQkv*:PackQkv.*:MmaVariant.Attention*:Fp16Fallback.*:AttentionOps.*:Profiler.*'
call_step bert fp16,int8,fp8 1 170
call_step bert int8 128 200
