# Call 1 (eleventh session): where batch-1 latency goes (issue 8's target: <= 0.5x torch eager
# FP16's), with profiles; FP16 plans with FP16 I/O at batch 128 (first measured); the square
# GEMMs at 4096 and 8192 against cuBLAS with the heuristic's tiles (last measured 2026-12-05).
source perf/device/env.sh; source perf/device/call_steps.sh; call_begin b1
call_step resnet50 fp16,int8 1 110 --profile 1
call_step bert fp16,int8 1 140 --profile 1
STEP_NAME=resnet50-fp16-io16 call_step resnet50 fp16 128 90 --profile 128 --build-flags "--io-precision fp16"
call_step gemm fp16,int8,fp8 0 150 --sizes 4096,8192
