# Call 2: split-K for the tensor-core tiles (kernels/mma_gemm.cl MMA_SPLITK) where the output tiles
# alone leave most SMs idle: its tests on the real tensor cores (wgmma first on Hopper), batch 1
# again with profiles, batch 128 to see nothing else moved (torch eager FP16 in each step).
source perf/device/env.sh; source perf/device/call_steps.sh; call_begin b2
call_tests 200 'MmaVariant.Split*:MmaVariant.Int8*:MmaVariant.Fp16ConvGemmMatMulMatchCpu:MmaVariant.Fp8ConvMatMulMatchCpu'
call_step resnet50 fp16,int8 1 110 --profile 1
call_step bert fp16,int8 1 140 --profile 1
call_step resnet50 int8 128 90
