# Call 4 (the session's last code): every tensor-core test, the quantize/channels-last/fused
# epilogue tests and the cpu INT8 chain test, then ResNet-50 at batch 128 (FP16/INT8/FP8,
# INT8 profiled) and batch 1 (FP16/INT8), BERT-base INT8/FP8 at batch 128; torch in the same runs.
source perf/device/env.sh; source perf/device/call_steps.sh; call_begin r4
call_tests 200 'MmaVariant.*:ChannelsLast.*:CpuFastQuant.*:QuantizeOps.*:FuseQuantized.*:Fp16Fallback*'
call_step resnet50 fp16,int8,fp8 128 150 --profile 128
call_step resnet50 fp16,int8 1 50
call_step bert int8,fp8 128 150
