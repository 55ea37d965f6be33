# Call 4: latency-bound matmuls (batch 1's 128-row products) take the latency model's tile
# (mma_gemm.cpp latency_ranked, fitted to call 3's --tune timings): the tests on the real tensor
# cores (split-K, packed projections, the mixed INT8/FP8 plans), BERT-base batch 1 in
# FP16/INT8/FP8 without --tune, and ResNet-50 batch 1 (its classifier is such a matmul; its
# convolutions keep the throughput ranking) to check nothing regressed.
source perf/device/env.sh; source perf/device/call_steps.sh; call_begin k4
call_tests 90 'MmaVariant.SplitK*:MmaVariant.Latency*:MmaVariant.PackedQkv*:Fp16Fallback.OpenCl*:MmaVariant.Int8MatMul*'
call_step bert fp16,int8,fp8 1 170
call_step resnet50 fp16,int8 1 100
